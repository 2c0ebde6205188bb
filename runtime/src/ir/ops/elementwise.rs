//! Element-wise ops: binary with numpy broadcasting, unary activations.

use serde::{Deserialize, Serialize};

use super::{broadcast_shapes, expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Equal,
    Less,
    Greater,
    /// `a < 0 ? a·b : a`; `b` (the slope) broadcasts to `a`'s shape (ONNX PRelu).
    PRelu,
    And,
    Or,
    Xor,
}

impl BinaryOp {
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Equal | BinaryOp::Less | BinaryOp::Greater)
    }
    /// And, Or, Xor: bool operands, bool result.
    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
    }
}

/// `out = a (op) b` with numpy broadcasting. f32 and integer types; comparisons give bool; the
/// logical ops take and give bool; PRelu's slope broadcasts one way, to the data's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    pub op: BinaryOp,
}

impl OpInfo for Binary {
    fn name(&self) -> &'static str {
        match self.op {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
            BinaryOp::Pow => "Pow",
            BinaryOp::Max => "Max",
            BinaryOp::Min => "Min",
            BinaryOp::Equal => "Equal",
            BinaryOp::Less => "Less",
            BinaryOp::Greater => "Greater",
            BinaryOp::PRelu => "PRelu",
            BinaryOp::And => "And",
            BinaryOp::Or => "Or",
            BinaryOp::Xor => "Xor",
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 2, 2)?;
        let (a, b) = (&inputs[0], &inputs[1]);
        // Pow may take an exponent of another type; every other op needs equal types.
        if a.dtype != b.dtype && self.op != BinaryOp::Pow {
            return Err(Error::invalid(format!(
                "{} of {} and {}",
                self.name(),
                a.dtype,
                b.dtype
            )));
        }
        if self.op.is_logical() && a.dtype != DType::Bool {
            return Err(Error::invalid(format!(
                "{} of {} and {}",
                self.name(),
                a.dtype,
                b.dtype
            )));
        }
        let shape = broadcast_shapes(&a.shape, &b.shape)?;
        if self.op == BinaryOp::PRelu && shape != a.shape {
            return Err(Error::invalid(format!(
                "PRelu slope {:?} does not broadcast to the input {:?}",
                b.shape, a.shape
            )));
        }
        let dtype = if self.op.is_comparison() {
            DType::Bool
        } else {
            a.dtype
        };
        Ok(vec![Fact::new(dtype, shape)])
    }
}

/// Unary element-wise functions, activations included. Parameters are resolved constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum UnaryOp {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Sqrt,
    Exp,
    Log,
    Neg,
    Abs,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Erf,
    Softplus,
    /// x · sigmoid(x) (SiLU).
    Swish,
    /// x · tanh(softplus(x)).
    Mish,
    HardSwish,
    Gelu,
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Elu {
        alpha: f32,
    },
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    Not,
    Sin,
    Cos,
    /// -1, 0 or 1 (NaN stays NaN).
    Sign,
    /// x / (1 + |x|).
    Softsign,
    /// gamma · (x for x > 0, alpha·(e^x − 1) otherwise).
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// max(0, x) + min(0, alpha·(e^(x/alpha) − 1)).
    Celu {
        alpha: f32,
    },
    /// x for x > alpha, 0 otherwise.
    ThresholdedRelu {
        alpha: f32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unary {
    pub op: UnaryOp,
}

impl OpInfo for Unary {
    fn name(&self) -> &'static str {
        match self.op {
            UnaryOp::Identity => "Identity",
            UnaryOp::Relu => "Relu",
            UnaryOp::Sigmoid => "Sigmoid",
            UnaryOp::Tanh => "Tanh",
            UnaryOp::Sqrt => "Sqrt",
            UnaryOp::Exp => "Exp",
            UnaryOp::Log => "Log",
            UnaryOp::Neg => "Neg",
            UnaryOp::Abs => "Abs",
            UnaryOp::Reciprocal => "Reciprocal",
            UnaryOp::Floor => "Floor",
            UnaryOp::Ceil => "Ceil",
            UnaryOp::Round => "Round",
            UnaryOp::Erf => "Erf",
            UnaryOp::Softplus => "Softplus",
            UnaryOp::Swish => "Swish",
            UnaryOp::Mish => "Mish",
            UnaryOp::HardSwish => "HardSwish",
            UnaryOp::Gelu => "Gelu",
            UnaryOp::Clip { .. } => "Clip",
            UnaryOp::LeakyRelu { .. } => "LeakyRelu",
            UnaryOp::Elu { .. } => "Elu",
            UnaryOp::HardSigmoid { .. } => "HardSigmoid",
            UnaryOp::Not => "Not",
            UnaryOp::Sin => "Sin",
            UnaryOp::Cos => "Cos",
            UnaryOp::Sign => "Sign",
            UnaryOp::Softsign => "Softsign",
            UnaryOp::Selu { .. } => "Selu",
            UnaryOp::Celu { .. } => "Celu",
            UnaryOp::ThresholdedRelu { .. } => "ThresholdedRelu",
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        let ok = match self.op {
            UnaryOp::Identity => true,
            UnaryOp::Not => inputs[0].dtype == DType::Bool,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Clip { .. } | UnaryOp::Sign => {
                matches!(inputs[0].dtype, DType::F32 | DType::I64 | DType::I32)
            }
            _ => inputs[0].dtype == DType::F32,
        };
        if !ok {
            return Err(Error::invalid(format!(
                "{} does not take {}",
                self.name(),
                inputs[0].dtype
            )));
        }
        Ok(vec![inputs[0].clone()])
    }
}

//! Reductions and Softmax.

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

/// Softmax (or LogSoftmax) along one axis (opset ≥ 13 semantics; the importer rewrites older
/// opsets' "flatten from axis" form into this one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Softmax {
    pub axis: usize,
    pub log: bool,
}

impl OpInfo for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "LogSoftmax"
        } else {
            "Softmax"
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        if self.axis >= inputs[0].rank() || inputs[0].dtype != DType::F32 {
            return Err(Error::invalid(format!(
                "{} axis {} on f32 input {:?}",
                self.name(),
                self.axis,
                inputs[0].shape
            )));
        }
        Ok(vec![inputs[0].clone()])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceOp {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
    L2,
}

/// Reduction over sorted, distinct `axes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reduce {
    pub op: ReduceOp,
    pub axes: Vec<usize>,
    pub keepdims: bool,
}

impl OpInfo for Reduce {
    fn name(&self) -> &'static str {
        match self.op {
            ReduceOp::Mean => "ReduceMean",
            ReduceOp::Sum => "ReduceSum",
            ReduceOp::Max => "ReduceMax",
            ReduceOp::Min => "ReduceMin",
            ReduceOp::Prod => "ReduceProd",
            ReduceOp::L2 => "ReduceL2",
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        let x = &inputs[0];
        if self.axes.iter().any(|&a| a >= x.rank()) || self.axes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(format!(
                "{} axes {:?} invalid for rank {}",
                self.name(),
                self.axes,
                x.rank()
            )));
        }
        if !matches!(x.dtype, DType::F32 | DType::I64 | DType::I32) {
            return Err(Error::invalid(format!(
                "{} does not take {}",
                self.name(),
                x.dtype
            )));
        }
        let mut out = Vec::new();
        for (i, &d) in x.shape.iter().enumerate() {
            if self.axes.contains(&i) {
                if self.keepdims {
                    out.push(1);
                }
            } else {
                out.push(d);
            }
        }
        Ok(vec![Fact::new(x.dtype, out)])
    }
}

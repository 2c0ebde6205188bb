//! The IR's operator set: attributes (fully resolved, static) and shape inference.
//!
//! One file per family; each op is a serde struct with an `infer` function. [`Op`] is the closed
//! set the `.efm` format can carry; adding a variant is a format change (minor version bump).

pub mod elementwise;
pub mod linalg;
pub mod nn;
pub mod norm;
pub mod qlinear;
pub mod quant;
pub mod qweight;
pub mod recurrent;
pub mod reduce;
pub mod shape;

use serde::{Deserialize, Serialize};

use crate::tensor::DType;
use crate::{Error, Result};

pub use elementwise::{Binary, BinaryOp, Unary, UnaryOp};
pub use linalg::{Gemm, MatMul};
pub use nn::{BatchNorm, Conv, ConvTranspose, GlobalPool, Pool, PoolKind};
pub use norm::{InstanceNorm, LayerNorm, LpNorm};
pub use qlinear::{QAdd, QConv, QGemm, QOut, QPool, QScale};
pub use quant::{DequantizeLinear, DynamicQuantizeLinear, QuantizeLinear};
pub use qweight::{DynamicQuantizeConv, DynamicQuantizeMatMul, QGather, QGru, QLstm};
pub use recurrent::{Direction, Gru, Lstm};
pub use reduce::{ArgReduce, CumSum, Reduce, ReduceOp, Softmax, TopK};
pub use shape::{
    Cast, Concat, Expand, Gather, GatherElements, NearestMode, Pad, PadMode, Reshape, Resize,
    ResizeCoord, ResizeMode, Slice, Split, Transpose, Where,
};

/// Static type and shape of a tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl Fact {
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Fact {
        Fact {
            dtype,
            shape: shape.into(),
        }
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

/// Every operation the runtime can execute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Op {
    Conv(Conv),
    ConvTranspose(ConvTranspose),
    Pool(Pool),
    GlobalPool(GlobalPool),
    BatchNorm(BatchNorm),
    Gemm(Gemm),
    MatMul(MatMul),
    Binary(Binary),
    Unary(Unary),
    Softmax(Softmax),
    Reduce(Reduce),
    Reshape(Reshape),
    Transpose(Transpose),
    Concat(Concat),
    Slice(Slice),
    Gather(Gather),
    Pad(Pad),
    Cast(Cast),
    Split(Split),
    Resize(Resize),
    Expand(Expand),
    Where(Where),
    Lstm(Lstm),
    Gru(Gru),
    QuantizeLinear(QuantizeLinear),
    DequantizeLinear(DequantizeLinear),
    DynamicQuantizeLinear(DynamicQuantizeLinear),
    QConv(QConv),
    QGemm(QGemm),
    QAdd(QAdd),
    QPool(QPool),
    QLstm(QLstm),
    QGru(QGru),
    QGather(QGather),
    DynamicQuantizeMatMul(DynamicQuantizeMatMul),
    DynamicQuantizeConv(DynamicQuantizeConv),
    LayerNorm(LayerNorm),
    InstanceNorm(InstanceNorm),
    LpNorm(LpNorm),
    ArgReduce(ArgReduce),
    TopK(TopK),
    CumSum(CumSum),
    GatherElements(GatherElements),
}

macro_rules! dispatch {
    ($self:ident, $o:ident => $e:expr) => {
        match $self {
            Op::Conv($o) => $e,
            Op::ConvTranspose($o) => $e,
            Op::Pool($o) => $e,
            Op::GlobalPool($o) => $e,
            Op::BatchNorm($o) => $e,
            Op::Gemm($o) => $e,
            Op::MatMul($o) => $e,
            Op::Binary($o) => $e,
            Op::Unary($o) => $e,
            Op::Softmax($o) => $e,
            Op::Reduce($o) => $e,
            Op::Reshape($o) => $e,
            Op::Transpose($o) => $e,
            Op::Concat($o) => $e,
            Op::Slice($o) => $e,
            Op::Gather($o) => $e,
            Op::Pad($o) => $e,
            Op::Cast($o) => $e,
            Op::Split($o) => $e,
            Op::Resize($o) => $e,
            Op::Expand($o) => $e,
            Op::Where($o) => $e,
            Op::Lstm($o) => $e,
            Op::Gru($o) => $e,
            Op::QuantizeLinear($o) => $e,
            Op::DequantizeLinear($o) => $e,
            Op::DynamicQuantizeLinear($o) => $e,
            Op::QConv($o) => $e,
            Op::QGemm($o) => $e,
            Op::QAdd($o) => $e,
            Op::QPool($o) => $e,
            Op::QLstm($o) => $e,
            Op::QGru($o) => $e,
            Op::QGather($o) => $e,
            Op::DynamicQuantizeMatMul($o) => $e,
            Op::DynamicQuantizeConv($o) => $e,
            Op::LayerNorm($o) => $e,
            Op::InstanceNorm($o) => $e,
            Op::LpNorm($o) => $e,
            Op::ArgReduce($o) => $e,
            Op::TopK($o) => $e,
            Op::CumSum($o) => $e,
            Op::GatherElements($o) => $e,
        }
    };
}

/// What every op's attribute struct provides.
pub trait OpInfo {
    /// Short name shown by `inspect` and in errors.
    fn name(&self) -> &'static str;
    /// Output facts from input facts. Fails with a message naming the mismatch.
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>>;
}

impl Op {
    pub fn name(&self) -> &'static str {
        dispatch!(self, o => o.name())
    }
    pub fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        dispatch!(self, o => o.infer(inputs))
    }
    /// Ops whose output is the input's bytes reinterpreted: planned as aliases, never copied.
    pub fn is_view(&self) -> bool {
        matches!(self, Op::Reshape(_))
    }
}

/// Checks the number of inputs an op got.
pub(crate) fn expect_inputs(name: &str, inputs: &[Fact], min: usize, max: usize) -> Result<()> {
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(Error::invalid(format!(
            "{name} takes {want} inputs, got {}",
            inputs.len()
        )));
    }
    Ok(())
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::invalid(format!(
                    "shapes {a:?} and {b:?} do not broadcast"
                )))
            }
        };
    }
    Ok(out)
}

//! Reductions, ArgMax/ArgMin, TopK, CumSum and Softmax: ops along axes.

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
    L1,
    SumSquare,
    LogSumExp,
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
            ReduceOp::L1 => "ReduceL1",
            ReduceOp::SumSquare => "ReduceSumSquare",
            ReduceOp::LogSumExp => "ReduceLogSumExp",
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
        // L2 and LogSumExp take f32 only: a square root or a logarithm has no integer result.
        let ok = match x.dtype {
            DType::F32 => true,
            DType::I64 | DType::I32 => !matches!(self.op, ReduceOp::L2 | ReduceOp::LogSumExp),
            _ => false,
        };
        if !ok {
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

/// The index of the largest (or smallest) element along `axis`, as i64: the first of equal
/// ones, or the last with `last` (ONNX `select_last_index`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArgReduce {
    pub max: bool,
    pub axis: usize,
    pub keepdims: bool,
    pub last: bool,
}

impl OpInfo for ArgReduce {
    fn name(&self) -> &'static str {
        if self.max {
            "ArgMax"
        } else {
            "ArgMin"
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        let x = &inputs[0];
        if self.axis >= x.rank() || x.shape[self.axis] == 0 {
            return Err(Error::invalid(format!(
                "{} along axis {} of {:?}",
                self.name(),
                self.axis,
                x.shape
            )));
        }
        if !matches!(
            x.dtype,
            DType::F32 | DType::I64 | DType::I32 | DType::U8 | DType::I8
        ) {
            return Err(Error::invalid(format!(
                "{} does not take {}",
                self.name(),
                x.dtype
            )));
        }
        let mut out = x.shape.clone();
        if self.keepdims {
            out[self.axis] = 1;
        } else {
            out.remove(self.axis);
        }
        Ok(vec![Fact::new(DType::I64, out)])
    }
}

/// The `k` largest (or smallest) elements along `axis` and their i64 indices, in order (ties:
/// the lower index first, as onnxruntime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    pub axis: usize,
    pub k: usize,
    pub largest: bool,
}

impl OpInfo for TopK {
    fn name(&self) -> &'static str {
        "TopK"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("TopK", inputs, 1, 1)?;
        let x = &inputs[0];
        if self.axis >= x.rank() || self.k > x.shape[self.axis] {
            return Err(Error::invalid(format!(
                "TopK of {} along axis {} of {:?}",
                self.k, self.axis, x.shape
            )));
        }
        if !matches!(x.dtype, DType::F32 | DType::I64 | DType::I32) {
            return Err(Error::invalid(format!("TopK does not take {}", x.dtype)));
        }
        let mut shape = x.shape.clone();
        shape[self.axis] = self.k;
        Ok(vec![
            Fact::new(x.dtype, shape.clone()),
            Fact::new(DType::I64, shape),
        ])
    }
}

/// Running sums along `axis`: `exclusive` leaves the element itself out, `reverse` sums from
/// the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CumSum {
    pub axis: usize,
    pub exclusive: bool,
    pub reverse: bool,
}

impl OpInfo for CumSum {
    fn name(&self) -> &'static str {
        "CumSum"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("CumSum", inputs, 1, 1)?;
        let x = &inputs[0];
        if self.axis >= x.rank() || !matches!(x.dtype, DType::F32 | DType::I64 | DType::I32) {
            return Err(Error::invalid(format!(
                "CumSum along axis {} of {} {:?}",
                self.axis, x.dtype, x.shape
            )));
        }
        Ok(vec![x.clone()])
    }
}

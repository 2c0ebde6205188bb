//! Matrix products: ONNX Gemm and MatMul (batched, broadcasting).

use serde::{Deserialize, Serialize};

use super::{broadcast_shapes, expect_inputs, Fact, OpInfo, UnaryOp};
use crate::tensor::DType;
use crate::{Error, Result};

/// `Y = alpha · op(A) · op(B) + beta · C`, A and B 2-D, C broadcast to [M, N].
/// `act` is an epilogue activation set by fusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<UnaryOp>,
}

impl OpInfo for Gemm {
    fn name(&self) -> &'static str {
        "Gemm"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Gemm", inputs, 2, 3)?;
        let (a, b) = (&inputs[0], &inputs[1]);
        if a.rank() != 2 || b.rank() != 2 || a.dtype != DType::F32 || b.dtype != DType::F32 {
            return Err(Error::invalid(format!(
                "Gemm needs 2-D f32 A and B, got {:?} and {:?}",
                a.shape, b.shape
            )));
        }
        let (m, ka) = if self.trans_a {
            (a.shape[1], a.shape[0])
        } else {
            (a.shape[0], a.shape[1])
        };
        let (kb, n) = if self.trans_b {
            (b.shape[1], b.shape[0])
        } else {
            (b.shape[0], b.shape[1])
        };
        if ka != kb {
            return Err(Error::invalid(format!(
                "Gemm inner dimensions differ: {ka} vs {kb}"
            )));
        }
        if let Some(c) = inputs.get(2) {
            if broadcast_shapes(&c.shape, &[m, n])? != [m, n] {
                return Err(Error::invalid(format!(
                    "Gemm C {:?} does not broadcast to [{m}, {n}]",
                    c.shape
                )));
            }
        }
        Ok(vec![Fact::new(DType::F32, [m, n])])
    }
}

/// [`MatMul::dims`]: (batch shape, m, k, n, output shape).
pub type MatMulDims = (Vec<usize>, usize, usize, usize, Vec<usize>);

/// Numpy matmul: 1-D operands promoted, batch dimensions broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatMul {}

impl MatMul {
    /// (batch shape, m, k, n) and the output shape.
    pub fn dims(a: &[usize], b: &[usize]) -> Result<MatMulDims> {
        if a.is_empty() || b.is_empty() {
            return Err(Error::invalid("MatMul of a scalar"));
        }
        let a2: Vec<usize> = if a.len() == 1 {
            vec![1, a[0]]
        } else {
            a.to_vec()
        };
        let b2: Vec<usize> = if b.len() == 1 {
            vec![b[0], 1]
        } else {
            b.to_vec()
        };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != kb {
            return Err(Error::invalid(format!(
                "MatMul inner dimensions differ: {a:?} · {b:?}"
            )));
        }
        let batch = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
        let mut out = batch.clone();
        if a.len() > 1 {
            out.push(m);
        }
        if b.len() > 1 {
            out.push(n);
        }
        Ok((batch, m, k, n, out))
    }
}

impl OpInfo for MatMul {
    fn name(&self) -> &'static str {
        "MatMul"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("MatMul", inputs, 2, 2)?;
        if inputs[0].dtype != DType::F32 || inputs[1].dtype != DType::F32 {
            return Err(Error::invalid("MatMul needs f32 operands"));
        }
        let (_, _, _, _, out) = Self::dims(&inputs[0].shape, &inputs[1].shape)?;
        Ok(vec![Fact::new(DType::F32, out)])
    }
}

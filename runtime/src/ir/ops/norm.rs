//! Normalisations over a tensor's own values: LayerNormalization, InstanceNormalization and
//! LpNormalization (BatchNorm, whose statistics are constants, is in `nn`).

use serde::{Deserialize, Serialize};

use super::{broadcast_shapes, expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

/// `(x − mean) / sqrt(var + epsilon) · scale (+ bias)`, the statistics over the axes from `axis`
/// on; scale and the optional bias broadcast to those axes' shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNorm {
    pub axis: usize,
    pub epsilon: f32,
}

impl OpInfo for LayerNorm {
    fn name(&self) -> &'static str {
        "LayerNormalization"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 2, 3)?;
        let x = &inputs[0];
        if self.axis >= x.rank() {
            return Err(Error::invalid(format!(
                "LayerNormalization axis {} of rank {}",
                self.axis,
                x.rank()
            )));
        }
        let inner = &x.shape[self.axis..];
        for p in &inputs[1..] {
            if p.dtype != DType::F32 || broadcast_shapes(&p.shape, inner)? != inner {
                return Err(Error::invalid(format!(
                    "LayerNormalization parameter {} {:?} does not broadcast to {inner:?}",
                    p.dtype, p.shape
                )));
            }
        }
        check_f32(self.name(), x)?;
        Ok(vec![x.clone()])
    }
}

/// Per item and channel of `[N, C, …]`, `(x − mean) / sqrt(var + epsilon) · scale[c] + bias[c]`,
/// the statistics over the spatial axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceNorm {
    pub epsilon: f32,
}

impl OpInfo for InstanceNorm {
    fn name(&self) -> &'static str {
        "InstanceNormalization"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 3, 3)?;
        let x = &inputs[0];
        let c = x.shape.get(1).copied();
        let ok = x.rank() >= 3
            && inputs[1..]
                .iter()
                .all(|p| p.dtype == DType::F32 && p.rank() == 1 && Some(p.shape[0]) == c);
        if !ok {
            return Err(Error::invalid(format!(
                "InstanceNormalization of {:?} with scale {:?} and bias {:?}",
                x.shape, inputs[1].shape, inputs[2].shape
            )));
        }
        check_f32(self.name(), x)?;
        Ok(vec![x.clone()])
    }
}

/// `x / ‖x‖_p` along `axis`, p 1 or 2 (a zero vector stays zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpNorm {
    pub axis: usize,
    pub p: u8,
}

impl OpInfo for LpNorm {
    fn name(&self) -> &'static str {
        "LpNormalization"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        let x = &inputs[0];
        if self.axis >= x.rank() || !matches!(self.p, 1 | 2) {
            return Err(Error::invalid(format!(
                "LpNormalization p={} along axis {} of rank {}",
                self.p,
                self.axis,
                x.rank()
            )));
        }
        check_f32(self.name(), x)?;
        Ok(vec![x.clone()])
    }
}

fn check_f32(name: &str, x: &Fact) -> Result<()> {
    if x.dtype != DType::F32 {
        return Err(Error::invalid(format!("{name} does not take {}", x.dtype)));
    }
    Ok(())
}

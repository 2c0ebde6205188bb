//! QuantizeLinear / DequantizeLinear (ONNX semantics: round half to even, saturate).
//!
//! Inputs: x, scale, zero_point (optional; then the quantized type is u8). Scale and zero point
//! are per tensor, or per channel along `axis`.

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

fn check_params(name: &str, x: &Fact, scale: &Fact, axis: Option<usize>) -> Result<()> {
    let ok = match axis {
        None => scale.len() == 1,
        Some(a) => a < x.rank() && scale.rank() == 1 && scale.shape[0] == x.shape[a],
    };
    if !ok {
        return Err(Error::invalid(format!(
            "{name}: scale {:?} does not fit input {:?} (axis {axis:?})",
            scale.shape, x.shape
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizeLinear {
    /// Per-channel axis; None for per-tensor.
    pub axis: Option<usize>,
    /// Output type (u8 or i8): the zero point's type, u8 when absent.
    pub to: DType,
}

impl OpInfo for QuantizeLinear {
    fn name(&self) -> &'static str {
        "QuantizeLinear"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("QuantizeLinear", inputs, 2, 3)?;
        check_params("QuantizeLinear", &inputs[0], &inputs[1], self.axis)?;
        if inputs[0].dtype != DType::F32 || !matches!(self.to, DType::U8 | DType::I8) {
            return Err(Error::invalid("QuantizeLinear maps f32 to u8 or i8"));
        }
        Ok(vec![Fact::new(self.to, inputs[0].shape.clone())])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DequantizeLinear {
    pub axis: Option<usize>,
}

impl OpInfo for DequantizeLinear {
    fn name(&self) -> &'static str {
        "DequantizeLinear"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("DequantizeLinear", inputs, 2, 3)?;
        check_params("DequantizeLinear", &inputs[0], &inputs[1], self.axis)?;
        if !matches!(inputs[0].dtype, DType::U8 | DType::I8 | DType::I32) {
            return Err(Error::invalid(format!(
                "DequantizeLinear takes u8, i8 or i32, got {}",
                inputs[0].dtype
            )));
        }
        Ok(vec![Fact::new(DType::F32, inputs[0].shape.clone())])
    }
}

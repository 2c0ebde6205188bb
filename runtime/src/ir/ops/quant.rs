//! QuantizeLinear / DequantizeLinear (ONNX semantics: round half to even, saturate), and
//! DynamicQuantizeLinear, which takes its u8 scale and zero point from the input's range.
//!
//! Inputs: x, scale, zero_point (optional; then the quantized type is u8). Scale and zero point
//! are per tensor, or per channel along `axis`.

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

/// The scale fits `x` (one value, or one per channel along `axis`) and the zero point, when
/// given, has as many elements as the scale and the quantized type `q`.
fn check_params(name: &str, inputs: &[Fact], q: DType, axis: Option<usize>) -> Result<()> {
    let (x, scale) = (&inputs[0], &inputs[1]);
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
    if let Some(zero) = inputs.get(2) {
        if zero.len() != scale.len() || zero.dtype != q {
            return Err(Error::invalid(format!(
                "{name}: zero point {} {:?} does not match scale {:?} of {q}",
                zero.dtype, zero.shape, scale.shape
            )));
        }
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
        check_params("QuantizeLinear", inputs, self.to, self.axis)?;
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
        check_params("DequantizeLinear", inputs, inputs[0].dtype, self.axis)?;
        if !matches!(inputs[0].dtype, DType::U8 | DType::I8 | DType::I32) {
            return Err(Error::invalid(format!(
                "DequantizeLinear takes u8, i8 or i32, got {}",
                inputs[0].dtype
            )));
        }
        Ok(vec![Fact::new(DType::F32, inputs[0].shape.clone())])
    }
}

/// DynamicQuantizeLinear: f32 `x` → (u8 `y`, f32 scale `[]`, u8 zero point `[]`), the range
/// `[min(0, min x), max(0, max x)]` mapped onto 0..=255 (scale 1 where that range is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicQuantizeLinear {}

impl OpInfo for DynamicQuantizeLinear {
    fn name(&self) -> &'static str {
        "DynamicQuantizeLinear"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("DynamicQuantizeLinear", inputs, 1, 1)?;
        if inputs[0].dtype != DType::F32 {
            return Err(Error::invalid(format!(
                "DynamicQuantizeLinear takes f32, got {}",
                inputs[0].dtype
            )));
        }
        Ok(vec![
            Fact::new(DType::U8, inputs[0].shape.clone()),
            Fact::new(DType::F32, vec![]),
            Fact::new(DType::U8, vec![]),
        ])
    }
}

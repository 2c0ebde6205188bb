//! QuantizeLinear / DequantizeLinear on the GPU (`kernels/cuda/quant.cu`), so a QDQ model's
//! conversions stay on the device between its convolutions, and the int8 convolution (QConv).

pub mod dequantize;
pub mod qconv;
pub mod quantize;

use crate::ir::Fact;

/// (inner, channels) of per-tensor (`axis` None) or per-channel parameters.
pub(super) fn layout(x: &Fact, axis: Option<usize>) -> (i64, i64) {
    match axis {
        Some(a) => (
            x.shape[a + 1..].iter().product::<usize>() as i64,
            x.shape[a] as i64,
        ),
        None => (x.len().max(1) as i64, 1),
    }
}

//! QuantizeLinear / DequantizeLinear on the GPU (`kernels/cuda/quant.cu`), so a QDQ model's
//! conversions stay on the device between its convolutions, and the int8 compute ops QConv
//! (QGemm is a 1×1 QConv), QAdd and QPool, whose arithmetic mirrors the CPU kernels'
//! (`cpu::ops::quant`) expression by expression, so both backends round alike. onnxruntime's
//! `quantize_dynamic` ops quantize X on the device each run (DynamicQuantizeLinear) and feed
//! QConv's kernels: DynamicQuantizeConv, and DynamicQuantizeMatMul as a 1×1 QConv. QGather
//! widens its rows as it copies them; QLstm and QGru run the float recurrence over their
//! weights widened at build (`qrnn`).

pub mod dequantize;
pub mod dynamic_conv;
pub mod dynamic_matmul;
pub mod dynamic_quantize;
pub mod qadd;
pub mod qconv;
pub mod qgather;
pub mod qgemm;
pub mod qpool;
pub mod qrnn;
pub mod quantize;

use crate::ir::ops::{QScale, UnaryOp};
use crate::ir::Fact;
use crate::tensor::DType;

/// How a u8/i8 tensor's bytes map to the u8 domain some kernels compute in: (`byte ^ xor`,
/// zero point there), as `cpu::ops::quant::requant::Domain`.
pub(super) fn domain(dtype: DType, q: &QScale) -> (i32, i32) {
    match dtype {
        DType::I8 => (0x80, q.zero_point + 128),
        _ => (0, q.zero_point),
    }
}

/// The clamp (lo, hi) of a byte output with zero point `q.zero_point` in `dtype`'s range, a
/// fused ReLU or Clip folded in (the CPU's `requant::int_kind`).
pub(super) fn int_clamp(
    dtype: DType,
    q: &QScale,
    act: Option<UnaryOp>,
) -> std::result::Result<(f32, f32), String> {
    let zp = q.zero_point as f32;
    let (mut lo, mut hi) = if dtype == DType::I8 {
        (-128.0f32, 127.0f32)
    } else {
        (0.0, 255.0)
    };
    let quant = |v: f32| (v / q.scale).round_ties_even() + zp;
    match act {
        None => {}
        Some(UnaryOp::Relu) => lo = lo.max(zp),
        Some(UnaryOp::Clip { min, max }) => {
            lo = lo.max(quant(min));
            hi = hi.min(quant(max));
        }
        Some(a) => return Err(format!("a quantized output after {a:?}")),
    }
    Ok((lo, hi.max(lo)))
}

/// The clamp of an f32 output with a fused ReLU or Clip; other activations are not fused.
pub(super) fn float_clamp(act: Option<UnaryOp>) -> std::result::Result<(f32, f32), String> {
    match act {
        None => Ok((f32::NEG_INFINITY, f32::INFINITY)),
        Some(UnaryOp::Relu) => Ok((0.0, f32::INFINITY)),
        Some(UnaryOp::Clip { min, max }) => Ok((min, max)),
        Some(a) => Err(format!("an f32 output after {a:?}")),
    }
}

/// `u8`/`i8`, the suffix of byte tensors.
pub(super) fn byte_suffix(d: DType) -> Option<&'static str> {
    match d {
        DType::U8 => Some("u8"),
        DType::I8 => Some("i8"),
        _ => None,
    }
}

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

//! CPU kernel for DynamicQuantizeLinear: the scale and zero point from the input's range
//! (`qrnn::dynamic_params`, onnxruntime's `GetQuantizationParameter`), then the values
//! quantized as QuantizeLinear does — a true division, rounded half to even, the zero point
//! added, clamped — so results match onnxruntime bit for bit.

use edgefuse_kernels::qgemm::round_even;
use edgefuse_kernels::vmath::map_into;

use super::qrnn::dynamic_params;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    if b.inputs[0].dtype != DType::F32 {
        return unsupported(format!("DynamicQuantizeLinear of {}", b.inputs[0].dtype));
    }
    Ok(Box::new(DynamicQuantizeKernel))
}

struct DynamicQuantizeKernel;

/// DynamicQuantizeLinear of `x` into `out` (as long as `x`): returns the scale and zero point.
/// DynamicQuantizeMatMul quantizes its input through this too, so the two agree byte for byte.
pub fn quantize_into(x: &[f32], out: &mut [u8]) -> (f32, i32) {
    let (s, zp) = dynamic_params(x);
    bytes_with(x, out, s, zp);
    (s, zp)
}

/// `x` quantized with `(s, zp)` into bytes.
fn bytes_with(x: &[f32], out: &mut [u8], s: f32, zp: i32) {
    let z = zp as f32;
    // As in QuantizeLinear's kernel: the whole number `q` read from the mantissa's low byte
    // after adding 1.5·2^23 (NaN becomes 0).
    map_into(x, out, move |v: f32| {
        let q = (round_even((v / s).clamp(-300.0, 300.0)) + z).clamp(0.0, 255.0);
        (q + 12_582_912.0).to_bits() as u8
    });
}

/// `x` quantized with `(s, zp)` as `q − zp` in f32 (whole numbers, exact).
fn ints_with(x: &[f32], out: &mut [f32], s: f32, zp: i32) {
    let z = zp as f32;
    map_into(x, out, move |v: f32| {
        let q = (round_even((v / s).clamp(-300.0, 300.0)) + z).clamp(0.0, 255.0);
        // A NaN quantizes to byte 0 there (`q >= 0` is false for it).
        (if q >= 0.0 { q } else { 0.0 }) - z
    });
}

/// Elements per thread below which [`quantize_split`] stays on the calling thread.
const SPLIT_MIN: usize = 1 << 15;

/// [`quantize_into`] — bytes, or with `ints` the f32 `q − zp` a float kernel convolves
/// (DynamicQuantizeConv's depthwise layers), into `out` as f32s — split between `threads`
/// where `x` is large: each part's range, then the whole range's scale and zero point (the
/// parts' extremes give the same parameters as the whole), then each part quantized. The same
/// values as on one thread. Returns the scale and zero point.
pub fn quantize_split(x: &[f32], out: &mut [u8], ints: bool, threads: usize) -> (f32, i32) {
    let parts = threads.min(x.len() / SPLIT_MIN).max(1);
    let quantize = |x: &[f32], out: &mut [u8], s: f32, zp: i32| {
        if ints {
            ints_with(x, bytemuck::cast_slice_mut(&mut out[..x.len() * 4]), s, zp)
        } else {
            bytes_with(x, &mut out[..x.len()], s, zp)
        }
    };
    let (s, zp) = if parts == 1 {
        dynamic_params(x)
    } else {
        use rayon::prelude::*;
        let chunk = x.len().div_ceil(parts);
        let (lo, hi) = x
            .par_chunks(chunk)
            .map(edgefuse_kernels::vmath::range_with_zero)
            .reduce(|| (0.0, 0.0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
        // (The range of [lo, hi] is (lo, hi): lo ≤ 0 ≤ hi.)
        dynamic_params(&[lo, hi])
    };
    if parts == 1 {
        quantize(x, out, s, zp);
    } else {
        use rayon::prelude::*;
        let chunk = x.len().div_ceil(parts);
        let elem = if ints { 4 } else { 1 };
        x.par_chunks(chunk)
            .zip(out.par_chunks_mut(chunk * elem))
            .for_each(|(x, o)| quantize(x, o, s, zp));
    }
    (s, zp)
}

impl CpuKernel for DynamicQuantizeKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let (s, zp) = quantize_into(x, &mut outputs[0].data[..x.len()]);
        outputs[1].typed::<f32>()[0] = s;
        outputs[2].data[0] = zp as u8;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{DynamicQuantizeLinear, Op};
    use crate::Tensor;

    /// The ONNX reference's example, and an all-zero input (scale 1, zero point 0).
    #[test]
    fn range_scale_zero_point_and_values() {
        let op = Op::DynamicQuantizeLinear(DynamicQuantizeLinear {});
        let x = Tensor::from_vec(&[6], vec![0.0f32, 2.0, -3.0, -2.5, 1.34, 0.5]).unwrap();
        let out = eval(&op, &[&x]).unwrap();
        assert_eq!(out[0].bytes(), &[153, 255, 0, 26, 221, 179]);
        assert_eq!(out[1].as_slice::<f32>().unwrap(), &[0.019607844]);
        assert_eq!(out[2].bytes(), &[153]);
        let zeros = Tensor::from_vec(&[3], vec![0.0f32; 3]).unwrap();
        let out = eval(&op, &[&zeros]).unwrap();
        assert_eq!(out[0].bytes(), &[0, 0, 0]);
        assert_eq!(out[1].as_slice::<f32>().unwrap(), &[1.0]);
        assert_eq!(out[2].bytes(), &[0]);
        // A range past f32's: onnxruntime's infinite scale, zero point 0, every value 0.
        let huge = Tensor::from_vec(&[4], vec![-3e38f32, 3e38, 1.0, -2.0]).unwrap();
        let out = eval(&op, &[&huge]).unwrap();
        assert_eq!(out[0].bytes(), &[0, 0, 0, 0]);
        assert_eq!(out[1].as_slice::<f32>().unwrap(), &[f32::INFINITY]);
        assert_eq!(out[2].bytes(), &[0]);
    }
}

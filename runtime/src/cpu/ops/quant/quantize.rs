//! CPU kernel for QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point), to u8 or
//! i8, per tensor or per channel along an axis.
//!
//! The arithmetic is onnxruntime's (MLAS `MlasQuantizeLinear` reference path): a true division
//! by the scale, rounding in f32, the zero point added in f32, then clamping — so results match
//! it bit for bit.

use edgefuse_kernels::qgemm::round_even;
use edgefuse_kernels::vmath::map_into;
use rayon::prelude::*;

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::QuantizeLinear;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &QuantizeLinear, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let zp = b.inputs.get(2).map(|f| f.dtype);
    let ok = x.dtype == DType::F32
        && b.inputs[1].dtype == DType::F32
        && matches!(op.to, DType::U8 | DType::I8)
        && zp.is_none_or(|z| z == op.to);
    if !ok {
        return unsupported(format!("QuantizeLinear of {} to {}", x.dtype, op.to));
    }
    let (outer, channels, inner) = match op.axis {
        Some(a) => (
            x.shape[..a].iter().product(),
            x.shape[a],
            x.shape[a + 1..].iter().product(),
        ),
        None => (1, 1, x.len()),
    };
    Ok(Box::new(QuantizeKernel {
        to: op.to,
        outer,
        channels,
        inner,
    }))
}

struct QuantizeKernel {
    to: DType,
    outer: usize,
    channels: usize,
    /// Elements sharing one scale, per outer index and channel.
    inner: usize,
}

/// Elements sharing one scale from which the quantization splits over the threads.
const PAR_MIN_ELEMS: usize = 32 << 10;

impl CpuKernel for QuantizeKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let scale = inputs[1].typed::<f32>();
        let zp = inputs.get(2).map(|z| z.data);
        let out = &mut *outputs[0].data;
        let (lo, hi) = match self.to {
            DType::I8 => (-128.0f32, 127.0f32),
            _ => (0.0, 255.0),
        };
        let signed = self.to == DType::I8;
        let mut at = 0;
        for _ in 0..self.outer {
            for c in 0..self.channels {
                let s = scale[c];
                let z = match zp {
                    Some(z) if signed => z[c] as i8 as f32,
                    Some(z) => z[c] as f32,
                    None => 0.0,
                };
                let (xs, os) = (&x[at..at + self.inner], &mut out[at..at + self.inner]);
                // Values beyond ±300 saturate either way; within that range adding and
                // subtracting 1.5·2^23 rounds half to even and vectorises (`round_ties_even`
                // is a library call without SSE4.1). NaN stays NaN and becomes 0, as before.
                // `q` is a whole number in lo..=hi (or NaN): adding 1.5·2^23 puts it in the low
                // mantissa bits, two's complement for i8 — the byte without a saturating cast,
                // which does not vectorise. NaN's bits end in a zero byte, as `NaN as u8` is 0.
                let run = move |(xs, os): (&[f32], &mut [u8])| {
                    map_into(xs, os, move |v: f32| {
                        let q = (round_even((v / s).clamp(-300.0, 300.0)) + z).clamp(lo, hi);
                        (q + 12_582_912.0).to_bits() as u8
                    })
                };
                if ctx.threads > 1 && self.inner >= PAR_MIN_ELEMS {
                    // One run per thread (a network's input: its division is most of the
                    // cost), whole cache lines of the output each.
                    let per = self.inner.div_ceil(ctx.threads).next_multiple_of(64);
                    xs.par_chunks(per).zip(os.par_chunks_mut(per)).for_each(run);
                } else {
                    run((xs, os));
                }
                at += self.inner;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, QuantizeLinear};
    use crate::{DType, Tensor};

    fn q(x: &Tensor, s: &Tensor, zp: Option<&Tensor>, axis: Option<usize>, to: DType) -> Tensor {
        let op = Op::QuantizeLinear(QuantizeLinear { axis, to });
        let mut ins = vec![x, s];
        ins.extend(zp);
        eval(&op, &ins).unwrap().remove(0)
    }

    #[test]
    fn rounds_half_to_even_and_saturates_u8() {
        let x = Tensor::from_vec(
            &[8],
            vec![0.5f32, 1.5, 2.5, -0.5, 3.0, 1000.0, -1000.0, 2.4],
        )
        .unwrap();
        let s = Tensor::scalar(1.0f32);
        assert_eq!(
            q(&x, &s, None, None, DType::U8).bytes(),
            &[0, 2, 2, 0, 3, 255, 0, 2]
        );
        let zp = Tensor::from_bytes(DType::U8, &[], &[128]).unwrap();
        let s = Tensor::scalar(0.5f32);
        // x / 0.5 = 1, 3, 5, -1, 6, 2000, -2000, 4.8 → +128.
        assert_eq!(
            q(&x, &s, Some(&zp), None, DType::U8).bytes(),
            &[129, 131, 133, 127, 134, 255, 0, 133]
        );
    }

    #[test]
    fn infinities_saturate_and_nan_gives_zero() {
        let x = Tensor::from_vec(
            &[4],
            vec![f32::NAN, f32::NEG_INFINITY, f32::INFINITY, 299.6],
        )
        .unwrap();
        let s = Tensor::scalar(1.0f32);
        assert_eq!(q(&x, &s, None, None, DType::U8).bytes(), &[0, 0, 255, 255]);
        let zp = Tensor::from_bytes(DType::I8, &[], &[(-100i8) as u8]).unwrap();
        let got: Vec<i8> = q(&x, &s, Some(&zp), None, DType::I8)
            .bytes()
            .iter()
            .map(|&b| b as i8)
            .collect();
        assert_eq!(got, [0, -128, 127, 127]);
    }

    #[test]
    fn i8_and_per_axis() {
        let x = Tensor::from_vec(&[2, 3], vec![1.0f32, -2.5, 300.0, 1.0, -2.5, -300.0]).unwrap();
        let s = Tensor::from_vec(&[2], vec![1.0f32, 0.5]).unwrap();
        let zp = Tensor::from_vec(&[2], vec![0i8, -10]).unwrap();
        let got = q(&x, &s, Some(&zp), Some(0), DType::I8);
        assert_eq!(got.as_slice::<i8>().unwrap(), &[1, -2, 127, -8, -15, -128]);
        // Per-axis on the last axis: scales per column.
        let s = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 4.0]).unwrap();
        let got = q(&x, &s, None, Some(1), DType::U8);
        assert_eq!(got.bytes(), &[1, 0, 75, 1, 0, 0]);
    }

    #[test]
    fn divides_rather_than_multiplying_by_the_reciprocal() {
        // In f32, 74.25 / 0.3 = 247.49998 (→ 247) but 74.25 · (1 / 0.3) = 247.5 (→ 248).
        let x = Tensor::from_vec(&[1], vec![74.25f32]).unwrap();
        let s = Tensor::scalar(0.3f32);
        assert_eq!(q(&x, &s, None, None, DType::U8).bytes(), &[247]);
    }

    /// Split over threads (a large per-tensor input, with a tail past whole runs), the bytes
    /// are those of one thread, for u8 and i8.
    #[test]
    fn threads_give_the_bytes_of_one() {
        let n = super::PAR_MIN_ELEMS * 2 + 77;
        let vals: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 2001) as f32 * 0.013 - 13.0 + (i % 3) as f32 * 0.5)
            .collect();
        let x = Tensor::from_vec(&[1, 1, n], vals).unwrap();
        let s = Tensor::from_vec(&[], vec![0.05f32]).unwrap();
        for (to, z) in [(DType::U8, 128u8), (DType::I8, 0xF6)] {
            let zp = Tensor::from_bytes(to, &[], &[z]).unwrap();
            let op = Op::QuantizeLinear(QuantizeLinear { axis: None, to });
            let one = q(&x, &s, Some(&zp), None, to);
            let two = crate::cpu::ops::eval_threads(&op, &[&x, &s, &zp], 2)
                .unwrap()
                .remove(0);
            assert_eq!(one.bytes(), two.bytes(), "{to:?}");
            // Not all one value: the test sees the data.
            assert!(one.bytes().iter().any(|&b| b != one.bytes()[0]));
        }
    }
}

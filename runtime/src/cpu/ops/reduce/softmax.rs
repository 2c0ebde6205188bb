//! CPU kernel for Softmax and LogSoftmax along one axis (f32, max-subtracted for stability).
//!
//! The tensor is seen as [outer, n, inner] with n the softmax axis. When inner is 1 each row is
//! contiguous; otherwise the kernel walks the axis with stride `inner`, keeping the running max
//! and sum of each inner position in scratch.

use rayon::prelude::*;

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Softmax;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

/// Elements below which the kernel stays on the calling thread.
const PAR_MIN: usize = 1 << 16;

pub fn build(op: &Softmax, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    if x.dtype != DType::F32 || op.axis >= x.rank() {
        return unsupported(format!("{} axis {} of {}", op.name(), op.axis, x.dtype));
    }
    Ok(Box::new(SoftmaxKernel {
        log: op.log,
        outer: x.shape[..op.axis].iter().product(),
        n: x.shape[op.axis],
        inner: x.shape[op.axis + 1..].iter().product(),
    }))
}

use crate::ir::ops::OpInfo as _;

struct SoftmaxKernel {
    log: bool,
    outer: usize,
    n: usize,
    inner: usize,
}

impl CpuKernel for SoftmaxKernel {
    fn scratch_bytes(&self) -> usize {
        if self.inner > 1 {
            2 * self.inner * std::mem::size_of::<f32>()
        } else {
            0
        }
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let out = outputs[0].typed::<f32>();
        let (n, inner) = (self.n, self.inner);
        let block = n * inner;
        if block == 0 || self.outer == 0 {
            return Ok(());
        }
        if inner == 1 {
            if ctx.threads > 1 && x.len() >= PAR_MIN {
                out.par_chunks_mut(n)
                    .zip(x.par_chunks(n))
                    .for_each(|(o, x)| row(x, o, self.log));
            } else {
                for (o, x) in out.chunks_mut(n).zip(x.chunks(n)) {
                    row(x, o, self.log);
                }
            }
            return Ok(());
        }
        let scratch: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..2 * inner * 4]);
        let (max, sum) = scratch.split_at_mut(inner);
        for (o, x) in out.chunks_mut(block).zip(x.chunks(block)) {
            max.copy_from_slice(&x[..inner]);
            for xr in x.chunks(inner).skip(1) {
                for (m, &v) in max.iter_mut().zip(xr) {
                    *m = m.max(v);
                }
            }
            sum.fill(0.0);
            for (or, xr) in o.chunks_mut(inner).zip(x.chunks(inner)) {
                for (((o, &v), &m), s) in or.iter_mut().zip(xr).zip(max.iter()).zip(sum.iter_mut())
                {
                    let e = (v - m).exp();
                    *s += e;
                    *o = e;
                }
            }
            if self.log {
                for s in sum.iter_mut() {
                    *s = s.ln();
                }
                for (or, xr) in o.chunks_mut(inner).zip(x.chunks(inner)) {
                    for (((o, &v), &m), &s) in or.iter_mut().zip(xr).zip(max.iter()).zip(sum.iter())
                    {
                        *o = v - m - s;
                    }
                }
            } else {
                for or in o.chunks_mut(inner) {
                    for (o, &s) in or.iter_mut().zip(sum.iter()) {
                        *o /= s;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Softmax (or LogSoftmax) of one contiguous row.
#[inline]
fn row(x: &[f32], o: &mut [f32], log: bool) {
    edgefuse_kernels::vmath::softmax(x, o, log);
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Softmax};
    use crate::Tensor;

    fn softmax(x: &Tensor, axis: usize, log: bool) -> Vec<f32> {
        eval(&Op::Softmax(Softmax { axis, log }), &[x]).unwrap()[0]
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    /// f64 reference for a [2, 3] input.
    fn reference(v: &[f32], axis: usize, log: bool) -> Vec<f64> {
        let at = |i: usize, j: usize| v[i * 3 + j] as f64;
        let mut out = vec![0.0; 6];
        for i in 0..2 {
            for j in 0..3 {
                let line: Vec<f64> = if axis == 0 {
                    (0..2).map(|k| at(k, j)).collect()
                } else {
                    (0..3).map(|k| at(i, k)).collect()
                };
                let s: f64 = line.iter().map(|l| l.exp()).sum();
                out[i * 3 + j] = if log {
                    at(i, j) - s.ln()
                } else {
                    at(i, j).exp() / s
                };
            }
        }
        out
    }

    #[test]
    fn both_axes_and_log() {
        let v = vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 10.0];
        let x = Tensor::from_vec(&[2, 3], v.clone()).unwrap();
        for axis in [0, 1] {
            for log in [false, true] {
                let got = softmax(&x, axis, log);
                for (g, w) in got.iter().zip(reference(&v, axis, log)) {
                    assert!(
                        (*g as f64 - w).abs() < 1e-6,
                        "axis {axis} log {log}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_logits_are_stable() {
        let x = Tensor::from_vec(&[1, 3], vec![1000.0f32, 1000.0, -1000.0]).unwrap();
        assert_eq!(softmax(&x, 1, false), vec![0.5, 0.5, 0.0]);
        let l = softmax(&x, 1, true);
        assert!((l[0] - -std::f32::consts::LN_2).abs() < 1e-6);
        assert!((l[2] - -2000.0 - -std::f32::consts::LN_2).abs() < 1e-3);
    }

    #[test]
    fn middle_axis() {
        // [2, 2, 2] along axis 1: pairs (x[i,0,k], x[i,1,k]).
        let x =
            Tensor::from_vec(&[2, 2, 2], vec![0.0f32, 1.0, 0.0, 3.0, 5.0, 0.0, 5.0, 0.0]).unwrap();
        let got = softmax(&x, 1, false);
        let s = |a: f64, b: f64| (a.exp() / (a.exp() + b.exp())) as f32;
        let want = [0.5, s(1.0, 3.0), 0.5, s(3.0, 1.0), 0.5, 0.5, 0.5, 0.5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{g} vs {w}");
        }
    }
}

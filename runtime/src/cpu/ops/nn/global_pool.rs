//! CPU kernel for GlobalAveragePool / GlobalMaxPool: one reduction per (n, c) plane.

use rayon::prelude::*;

use super::conv::PAR_MIN_WORK;
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{GlobalPool, PoolKind};
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

struct GlobalPoolKernel {
    planes: usize,
    plane: usize,
    kind: PoolKind,
}

pub fn build(op: &GlobalPool, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    Ok(Box::new(GlobalPoolKernel {
        planes: x.shape[0] * x.shape[1],
        plane: x.shape[2..].iter().product(),
        kind: op.kind,
    }))
}

impl CpuKernel for GlobalPoolKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let y = &mut outputs[0].typed::<f32>()[..self.planes];
        if self.plane == 0 {
            // Nothing to reduce: the mean is undefined, the max has no candidate.
            y.fill(match self.kind {
                PoolKind::Avg => f32::NAN,
                PoolKind::Max => f32::MIN,
            });
            return Ok(());
        }
        let kind = self.kind;
        let scale = 1.0 / self.plane as f32;
        let plane = self.plane;
        // A run of planes: the sums in eight lanes (one dependent add per element was a
        // latency chain: EfficientNet's 1 280 planes of 49 took 19 µs).
        let reduce = |(ys, xs): (&mut [f32], &[f32])| {
            for (o, xp) in ys.iter_mut().zip(xs.chunks_exact(plane)) {
                *o = match kind {
                    PoolKind::Avg => sum8(xp) * scale,
                    PoolKind::Max => xp.iter().fold(f32::MIN, |m, &v| if v > m { v } else { m }),
                };
            }
        };
        let x = &x[..self.planes * plane];
        if ctx.threads > 1 && x.len() >= PAR_MIN_WORK {
            // One run of planes per thread (rayon would otherwise split down to single planes).
            let per = self.planes.div_ceil(ctx.threads);
            y.par_chunks_mut(per)
                .zip(x.par_chunks(per * plane))
                .for_each(reduce);
        } else {
            reduce((y, x));
        }
        Ok(())
    }
}

/// The sum of `xs`, in eight interleaved partial sums (vectorised), then the tail.
fn sum8(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ops::nn::conv::tests::{assert_close, run_op, tensor};
    use crate::ir::Op;

    #[test]
    fn global_pool_reduces_each_plane() {
        // (67 planes of 1 024: split unevenly between two threads.)
        for shape in [
            vec![2, 3, 5, 7],
            vec![1, 4, 9],
            vec![1, 64, 32, 32],
            vec![1, 67, 32, 32],
        ] {
            let x = tensor(&shape, 3);
            let xs = x.as_slice::<f32>().unwrap();
            let plane: usize = shape[2..].iter().product();
            for kind in [PoolKind::Avg, PoolKind::Max] {
                let want: Vec<f32> = xs
                    .chunks(plane)
                    .map(|p| match kind {
                        PoolKind::Avg => {
                            p.iter().map(|&v| v as f64).sum::<f64>() as f32 / plane as f32
                        }
                        PoolKind::Max => p.iter().cloned().fold(f32::MIN, f32::max),
                    })
                    .collect();
                let op = Op::GlobalPool(GlobalPool { kind });
                let got = crate::cpu::ops::eval(&op, &[&x]).unwrap();
                let mut out_shape = shape.clone();
                out_shape[2..].iter_mut().for_each(|d| *d = 1);
                assert_eq!(got[0].shape, out_shape);
                assert_close(got[0].as_slice::<f32>().unwrap(), &want, "global pool");
                let got = run_op(&op, &[&x], 2);
                assert_close(
                    got[0].as_slice::<f32>().unwrap(),
                    &want,
                    "global pool, 2 threads",
                );
            }
        }
    }
}

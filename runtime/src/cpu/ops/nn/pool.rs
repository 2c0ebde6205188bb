//! CPU kernel for MaxPool / AveragePool (1-D and 2-D), one plane at a time.
//!
//! The output shape (ceil mode included) comes from the IR; windows are clipped to the input.
//! AveragePool with `count_include_pad` divides by the taps inside the padded input, not counting
//! a ceil-mode overhang past the end padding (onnxruntime's AveragePool functors, and PyTorch).

use edgefuse_kernels::conv::Window2d;
use edgefuse_kernels::pool::{avg_pool, max_pool_planes};
use rayon::prelude::*;

use super::conv::PAR_MIN_WORK;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Pool, PoolKind};
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

struct PoolKernel {
    planes: usize,
    geom: Window2d,
    kind: PoolKind,
    count_include_pad: bool,
}

pub fn build(op: &Pool, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let Some(geom) = Window2d::from_axes(
        &x.shape[2..],
        &op.kernel,
        &op.strides,
        &op.dilations,
        &op.pads,
        &y.shape[2..],
    ) else {
        return unsupported(format!("pooling over {} spatial axes", op.kernel.len()));
    };
    Ok(Box::new(PoolKernel {
        planes: x.shape[0] * x.shape[1],
        geom,
        kind: op.kind,
        count_include_pad: op.count_include_pad,
    }))
}

impl CpuKernel for PoolKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let y = outputs[0].typed::<f32>();
        if y.is_empty() {
            return Ok(());
        }
        let g = &self.geom;
        let (isz, osz) = (g.in_size(), g.out_size());
        // Planes `first..` into `run` (whole output planes).
        let planes = |first: usize, run: &mut [f32]| {
            let n = run.len() / osz;
            let xs = &x[first * isz..][..n * isz];
            match self.kind {
                PoolKind::Max => max_pool_planes(g, n, xs, run),
                PoolKind::Avg => {
                    for (xp, yp) in xs.chunks_exact(isz.max(1)).zip(run.chunks_exact_mut(osz)) {
                        avg_pool(g, self.count_include_pad, xp, yp)
                    }
                }
            }
        };
        let y = &mut y[..self.planes * osz];
        if ctx.threads > 1 && y.len() * g.taps() >= PAR_MIN_WORK {
            // One run of planes per thread (rayon would otherwise split down to single
            // planes, a task each).
            let per = self.planes.div_ceil(ctx.threads);
            y.par_chunks_mut(per * osz)
                .enumerate()
                .for_each(|(t, run)| planes(t * per, run));
        } else {
            planes(0, y);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ops::nn::conv::tests::{assert_close, run_op, tensor};
    use crate::ir::Op;
    use crate::Tensor;

    /// Visits each window tap by tap, as the ONNX definition reads.
    fn naive(op: &Pool, x: &Tensor, out: &[usize]) -> Vec<f32> {
        let xs = x.as_slice::<f32>().unwrap();
        let one_d = op.kernel.len() == 1;
        let lift = |v: &[usize], one| if one_d { vec![one, v[0]] } else { v.to_vec() };
        let (sp, k, s, d, o) = (
            lift(&x.shape[2..], 1),
            lift(&op.kernel, 1),
            lift(&op.strides, 1),
            lift(&op.dilations, 1),
            lift(&out[2..], 1),
        );
        let p = if one_d {
            vec![0, op.pads[0], 0, op.pads[1]]
        } else {
            op.pads.clone()
        };
        let planes = x.shape[0] * x.shape[1];
        let mut y = Vec::new();
        for pl in 0..planes {
            for oy in 0..o[0] {
                for ox in 0..o[1] {
                    let (mut max, mut sum, mut inside, mut padded) = (f32::MIN, 0.0f32, 0, 0);
                    for ki in 0..k[0] {
                        for kj in 0..k[1] {
                            let iy = (oy * s[0] + ki * d[0]) as isize - p[0] as isize;
                            let ix = (ox * s[1] + kj * d[1]) as isize - p[1] as isize;
                            // Inside the padded input (begin pads through end pads)?
                            if iy < (sp[0] + p[2]) as isize && ix < (sp[1] + p[3]) as isize {
                                padded += 1;
                            }
                            if iy >= 0 && ix >= 0 && iy < sp[0] as isize && ix < sp[1] as isize {
                                let v = xs[(pl * sp[0] + iy as usize) * sp[1] + ix as usize];
                                max = max.max(v);
                                sum += v;
                                inside += 1;
                            }
                        }
                    }
                    y.push(match op.kind {
                        PoolKind::Max => max,
                        PoolKind::Avg if op.count_include_pad => sum / padded as f32,
                        PoolKind::Avg => sum / inside as f32,
                    });
                }
            }
        }
        y
    }

    #[test]
    fn pool_matches_window_definition() {
        // (x shape, kernel, strides, pads, dilations, ceil_mode)
        type Geom = (
            Vec<usize>,
            Vec<usize>,
            Vec<usize>,
            Vec<usize>,
            Vec<usize>,
            bool,
        );
        let geoms: Vec<Geom> = vec![
            (
                vec![1, 2, 8, 8],
                vec![2, 2],
                vec![2, 2],
                vec![0; 4],
                vec![1, 1],
                false,
            ),
            (
                vec![2, 3, 7, 9],
                vec![3, 3],
                vec![2, 2],
                vec![1, 1, 1, 1],
                vec![1, 1],
                false,
            ),
            (
                vec![1, 2, 7, 8],
                vec![3, 3],
                vec![2, 2],
                vec![0, 1, 0, 0],
                vec![1, 1],
                true,
            ),
            (
                vec![1, 2, 6, 6],
                vec![3, 2],
                vec![2, 2],
                vec![1, 0, 1, 1],
                vec![1, 1],
                true,
            ),
            (
                vec![1, 1, 9, 10],
                vec![3, 3],
                vec![1, 2],
                vec![2, 2, 2, 2],
                vec![2, 2],
                false,
            ),
            (
                vec![1, 2, 10, 10],
                vec![2, 3],
                vec![3, 3],
                vec![1, 1, 0, 0],
                vec![2, 1],
                true,
            ),
            // Windows that tile the input (the vectorised max path), odd sizes left over.
            (
                vec![2, 3, 11, 13],
                vec![2, 2],
                vec![2, 2],
                vec![0; 4],
                vec![1, 1],
                false,
            ),
            (
                vec![1, 2, 9, 10],
                vec![3, 3],
                vec![3, 3],
                vec![0; 4],
                vec![1, 1],
                false,
            ),
            (vec![1, 2, 9], vec![2], vec![2], vec![0, 0], vec![1], false),
            (vec![2, 3, 13], vec![3], vec![2], vec![1, 0], vec![1], true),
            (vec![1, 2, 11], vec![4], vec![3], vec![2, 2], vec![1], false),
            (vec![1, 1, 12], vec![2], vec![3], vec![0, 0], vec![2], true),
        ];
        for (i, (xs, kernel, strides, pads, dilations, ceil_mode)) in geoms.into_iter().enumerate()
        {
            let x = tensor(&xs, i as u64);
            for (kind, count_include_pad) in [
                (PoolKind::Max, false),
                (PoolKind::Avg, false),
                (PoolKind::Avg, true),
            ] {
                let op = Pool {
                    kind,
                    kernel: kernel.clone(),
                    strides: strides.clone(),
                    pads: pads.clone(),
                    dilations: dilations.clone(),
                    ceil_mode,
                    count_include_pad,
                };
                let what = format!("case {i} {kind:?} include_pad={count_include_pad}");
                let got = crate::cpu::ops::eval(&Op::Pool(op.clone()), &[&x]).unwrap();
                let want = naive(&op, &x, &got[0].shape);
                assert_close(got[0].as_slice::<f32>().unwrap(), &want, &what);
                let got = run_op(&Op::Pool(op), &[&x], 2);
                assert_close(got[0].as_slice::<f32>().unwrap(), &want, &what);
            }
        }
    }

    #[test]
    fn ceil_mode_average_excludes_overhang() {
        // 1×1×5×5 of ones, kernel 2, stride 2, ceil mode: the last row/column of windows overhangs
        // the input by one; with count_include_pad they still average to exactly 1.
        let x = Tensor::from_vec(&[1, 1, 5, 5], vec![1.0f32; 25]).unwrap();
        let op = Pool {
            kind: PoolKind::Avg,
            kernel: vec![2, 2],
            strides: vec![2, 2],
            pads: vec![0; 4],
            dilations: vec![1, 1],
            ceil_mode: true,
            count_include_pad: true,
        };
        let y = crate::cpu::ops::eval(&Op::Pool(op), &[&x]).unwrap();
        assert_eq!(y[0].shape, [1, 1, 3, 3]);
        assert!(y[0].as_slice::<f32>().unwrap().iter().all(|&v| v == 1.0));
    }
}

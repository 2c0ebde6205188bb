//! Cubic convolution: four taps per axis (edge indices repeated), onnxruntime's coefficients
//! and order of sums — along the last axis first, then each outer axis's four rows weighted.

use super::{axis_coord, axis_scale, contiguous_strides, unsupported, MAX_RANK};
use crate::cpu::ops::{CpuKernel, Ctx};
use crate::ir::ops::Resize;
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

/// Interpolated axes allowed besides the last (4² = 16 corner rows per output row).
const MAX_OUTER: usize = 2;

/// One output index's four sources along an axis: element offsets and weights.
#[derive(Debug, Clone, Copy)]
struct Tap4 {
    off: [usize; 4],
    w: [f32; 4],
}

/// ONNX's cubic weights for the taps at ⌊c⌋ − 1 … ⌊c⌋ + 2, `s` = c − ⌊c⌋.
fn coeffs(s: f32, a: f32) -> [f32; 4] {
    let (s1, t, t1) = (s + 1.0, 1.0 - s, 2.0 - s);
    [
        ((a * s1 - 5.0 * a) * s1 + 8.0 * a) * s1 - 4.0 * a,
        ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0,
        ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a,
    ]
}

fn taps(
    op: &Resize,
    ax: usize,
    n_in: usize,
    n_out: usize,
    stride: usize,
    a: f32,
    excl: bool,
) -> Vec<Tap4> {
    let scale = axis_scale(op, ax, n_in, n_out);
    (0..n_out)
        .map(|o| {
            let c = axis_coord(op.coord, o, scale, n_in, n_out);
            let base = c.floor();
            let mut w = coeffs(c - base, a);
            let mut off = [0; 4];
            let last = n_in as i64 - 1;
            for (k, (w, off)) in w.iter_mut().zip(&mut off).enumerate() {
                // Saturating: a hostile file's scale can put `c` at ±inf.
                let i = (base as i64).saturating_add(k as i64 - 1);
                if excl && !(0..=last).contains(&i) {
                    *w = 0.0;
                }
                *off = i.clamp(0, last) as usize * stride;
            }
            if excl {
                let sum: f32 = w.iter().sum();
                for w in &mut w {
                    *w /= sum;
                }
            }
            Tap4 { off, w }
        })
        .collect()
}

/// Whether every output index reads one input with weight 1 (an axis left as it is).
fn plain(t: &[Tap4]) -> bool {
    t.iter().all(|t| t.w == [0.0, 1.0, 0.0, 0.0])
}

pub(super) fn build(
    op: &Resize,
    shape: &[usize],
    a: f32,
    excl: bool,
) -> Result<Box<dyn CpuKernel>> {
    let r = shape.len();
    let strides = contiguous_strides(shape);
    let taps: Vec<Vec<Tap4>> = (0..r)
        .map(|ax| {
            taps(
                op,
                ax,
                shape[ax],
                op.out_shape[ax],
                strides[ax] as usize,
                a,
                excl,
            )
        })
        .collect();
    let interp: Vec<bool> = taps.iter().map(|t| !plain(t)).collect();
    let outer = interp[..r - 1].iter().filter(|&&i| i).count();
    if outer > MAX_OUTER {
        return unsupported(format!("cubic Resize along {} axes", outer + 1));
    }
    Ok(Box::new(CubicKernel {
        out_shape: op.out_shape.clone(),
        interp,
        taps,
    }))
}

struct CubicKernel {
    out_shape: Vec<usize>,
    /// Per axis: whether any output index mixes inputs.
    interp: Vec<bool>,
    /// Per axis, per output index.
    taps: Vec<Vec<Tap4>>,
}

impl CpuKernel for CubicKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let out = outputs[0].typed::<f32>();
        let r = self.out_shape.len();
        let wo = self.out_shape[r - 1];
        if out.is_empty() || wo == 0 {
            return Ok(());
        }
        let (last, last_interp) = (&self.taps[r - 1], self.interp[r - 1]);
        let outer = &self.out_shape[..r - 1];
        let mut idx = [0usize; MAX_RANK];
        let row = |src: &[f32], t: &Tap4| -> f32 {
            if last_interp {
                (0..4).fold(0.0, |acc, k| acc + t.w[k] * src[t.off[k]])
            } else {
                src[t.off[1]]
            }
        };
        // Corner rows of the current output row: input offsets and weights, in
        // onnxruntime's order (the outermost axis's taps vary slowest).
        let mut corners = [(0usize, 1.0f32); 1 << (2 * MAX_OUTER)];
        for dst in out.chunks_exact_mut(wo) {
            let mut n = 1;
            corners[0] = (0, 1.0);
            for (ax, &i) in idx[..r - 1].iter().enumerate() {
                let t = self.taps[ax][i];
                if self.interp[ax] {
                    for c in (0..n).rev() {
                        let (off, w) = corners[c];
                        for k in 0..4 {
                            corners[4 * c + k] = (off + t.off[k], w * t.w[k]);
                        }
                    }
                    n *= 4;
                } else {
                    for c in corners[..n].iter_mut() {
                        c.0 += t.off[1];
                    }
                }
            }
            if n == 1 {
                let src = &x[corners[0].0..];
                for (o, t) in dst.iter_mut().zip(last) {
                    *o = row(src, t);
                }
            } else {
                dst.fill(0.0);
                for &(off, w) in &corners[..n] {
                    let src = &x[off..];
                    for (o, t) in dst.iter_mut().zip(last) {
                        *o += w * row(src, t);
                    }
                }
            }
            for ax in (0..r - 1).rev() {
                idx[ax] += 1;
                if idx[ax] < outer[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        Ok(())
    }
}

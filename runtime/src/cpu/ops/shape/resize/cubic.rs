//! Cubic convolution: four taps per axis (edge indices repeated), onnxruntime's coefficients
//! and order of sums — along the last axis first, then each outer axis's four rows weighted
//! (the row walk it shares with linear, `grid.rs`).

use super::grid::{Grid, Taps};
use super::{axis_coord, axis_scale, contiguous_strides, unsupported};
use crate::cpu::ops::{CpuKernel, Ctx};
use crate::ir::ops::Resize;
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

/// Interpolated axes allowed besides the last (4² = 16 corner rows per output row).
const MAX_OUTER: usize = 2;

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
) -> Vec<Taps<4>> {
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
            Taps { off, w }
        })
        .collect()
}

/// Whether every output index reads one input with weight 1 (an axis left as it is).
fn plain(t: &[Taps<4>]) -> bool {
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
    let mut taps: Vec<Vec<Taps<4>>> = (0..r)
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
    // An axis left as it is reads its source (tap 1) at every tap, tap 0 included (`Grid`).
    for (t, _) in taps.iter_mut().zip(&interp).filter(|(_, &i)| !i) {
        for t in t.iter_mut() {
            t.off = [t.off[1]; 4];
        }
    }
    let outer = interp[..r - 1].iter().filter(|&&i| i).count();
    if outer > MAX_OUTER {
        return unsupported(format!("cubic Resize along {} axes", outer + 1));
    }
    Ok(Box::new(CubicKernel {
        grid: Grid {
            out_shape: op.out_shape.clone(),
            taps,
            interp,
        },
    }))
}

struct CubicKernel {
    grid: Grid<4, false>,
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
        if self.grid.last_interp() {
            self.grid.run(x, out, |src, t| {
                (0..4).fold(0.0, |acc, k| acc + t.w[k] * src[t.off[k]])
            });
        } else {
            self.grid.run(x, out, |src, t| src[t.off[0]]);
        }
        Ok(())
    }
}

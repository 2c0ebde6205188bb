//! The walk both interpolating Resize kernels share: each output row (along the last axis) is a
//! weighted sum of input rows — the corners of its taps along the outer axes — each row read
//! through the last axis's taps. Linear has two taps per axis, cubic four.

use super::MAX_RANK;

/// Corner rows one output row may sum: linear's 2³, cubic's 4².
pub(super) const MAX_CORNERS: usize = 16;

/// One output index's sources along one axis: `K` element offsets and their weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Taps<const K: usize> {
    pub off: [usize; K],
    pub w: [f32; K],
}

/// Every axis's taps, built once; `run` walks them for each output row. `OUTER_FASTEST`: the
/// order a kernel sums its corner rows in (float sums depend on it), kept per kernel so that its
/// results stay what they are — linear's outermost axis's taps vary fastest, cubic's slowest
/// (onnxruntime's order).
pub(super) struct Grid<const K: usize, const OUTER_FASTEST: bool> {
    pub out_shape: Vec<usize>,
    /// Per axis, per output index.
    pub taps: Vec<Vec<Taps<K>>>,
    /// Per axis: whether any output index mixes inputs; along an axis that does not, tap 0
    /// holds each index's source. The build keeps `K` to the power of the outer axes that do at
    /// most [`MAX_CORNERS`].
    pub interp: Vec<bool>,
}

impl<const K: usize, const OUTER_FASTEST: bool> Grid<K, OUTER_FASTEST> {
    /// Whether the last axis interpolates.
    pub fn last_interp(&self) -> bool {
        self.interp.last().copied().unwrap_or(false)
    }

    /// Fills `out`: each output row is `Σ w · row(src, tap)` over its corner rows `src` (weight
    /// `w`), for each tap of the last axis; a row with one corner is `row` itself.
    /// `row(src, t)` reads one output element's inputs from `src` (kernels pass `src[t.off[0]]`
    /// for a last axis that does not interpolate).
    #[inline(always)]
    pub fn run(&self, x: &[f32], out: &mut [f32], row: impl Fn(&[f32], &Taps<K>) -> f32) {
        let r = self.out_shape.len();
        let Some(&wo) = self.out_shape.last() else {
            return;
        };
        if out.is_empty() || wo == 0 {
            return;
        }
        let last = &self.taps[r - 1];
        let outer = &self.out_shape[..r - 1];
        let mut idx = [0usize; MAX_RANK];
        // Corner rows of the current output row: input offsets and weights.
        let mut corners = [(0usize, 1.0f32); MAX_CORNERS];
        for dst in out.chunks_exact_mut(wo) {
            let mut n = 1;
            corners[0] = (0, 1.0);
            for (ax, &i) in idx[..r - 1].iter().enumerate() {
                let t = &self.taps[ax][i];
                if !self.interp[ax] {
                    for c in corners[..n].iter_mut() {
                        c.0 += t.off[0];
                    }
                    continue;
                }
                if OUTER_FASTEST {
                    for c in 0..n {
                        let (off, w) = corners[c];
                        for k in 0..K {
                            corners[c + n * k] = (off + t.off[k], w * t.w[k]);
                        }
                    }
                } else {
                    for c in (0..n).rev() {
                        let (off, w) = corners[c];
                        for k in 0..K {
                            corners[K * c + k] = (off + t.off[k], w * t.w[k]);
                        }
                    }
                }
                n *= K;
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
    }
}

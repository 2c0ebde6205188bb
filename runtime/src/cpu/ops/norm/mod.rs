//! CPU kernels of the normalisation family: LayerNormalization, InstanceNormalization and
//! LpNormalization. The first two share [`normalize_rows`]: each contiguous row of the input is
//! normalised by its own mean and variance, then scaled.

pub mod instance_norm;
pub mod layer_norm;
pub mod lp_norm;

/// Elements below which the kernels stay on the calling thread.
const PAR_MIN: usize = 1 << 15;

/// For each row `r` of `inner` elements: `out = (x − mean) / sqrt(var + eps)`, then
/// `affine(r, j, v)` of each normalised value `v` at position `j` in the row. Mean and variance
/// in two passes (f32, the variance of the centred values). Rows split between `threads` when
/// there is enough work; none when `threads == 1`.
pub(crate) fn normalize_rows<F>(
    x: &[f32],
    out: &mut [f32],
    inner: usize,
    eps: f32,
    threads: usize,
    affine: F,
) where
    F: Fn(usize, usize, f32) -> f32 + Sync,
{
    if inner == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / inner;
    // One instance of the row loop and its fork for every caller: the device binary carries
    // the threading code once.
    let rows_per_task = if threads > 1 && out.len() >= PAR_MIN && rows > 1 {
        rows.div_ceil(threads * 4).max(1)
    } else {
        rows
    };
    let job = Rows {
        inner,
        eps,
        per: rows_per_task,
        affine: &affine,
    };
    job.run(0, x, out);
}

struct Rows<'a> {
    inner: usize,
    eps: f32,
    /// Rows one task normalises; the rest go to `rayon::join`.
    per: usize,
    affine: &'a (dyn Fn(usize, usize, f32) -> f32 + Sync),
}

impl Rows<'_> {
    /// Rows from `first` on: `x` and `out` hold whole rows.
    fn run(&self, first: usize, x: &[f32], out: &mut [f32]) {
        let rows = out.len() / self.inner;
        if rows > self.per {
            let half = rows / 2 * self.inner;
            let (xa, xb) = x.split_at(half);
            let (oa, ob) = out.split_at_mut(half);
            rayon::join(
                || self.run(first, xa, oa),
                || self.run(first + rows / 2, xb, ob),
            );
            return;
        }
        let n = self.inner as f32;
        for (i, (o, x)) in out
            .chunks_mut(self.inner)
            .zip(x.chunks(self.inner))
            .enumerate()
        {
            let mean = x.iter().sum::<f32>() / n;
            let var = x.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (j, (o, &v)) in o.iter_mut().zip(x).enumerate() {
                *o = (self.affine)(first + i, j, (v - mean) * inv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval_threads;
    use crate::ir::ops::{InstanceNorm, LayerNorm, Op};
    use crate::testing::values;

    /// Rows split between two threads give the one thread's result exactly, and each row has
    /// mean 0 and variance 1 before the affine part.
    #[test]
    fn threaded_rows_match_one_thread() {
        let x = values(&[8, 16, 16, 16], 1);
        let (s, b) = (values(&[16, 16], 2), values(&[16], 3));
        let ln = Op::LayerNorm(LayerNorm {
            axis: 2,
            epsilon: 1e-5,
        });
        let one = eval_threads(&ln, &[&x, &s, &b], 1).unwrap();
        let two = eval_threads(&ln, &[&x, &s, &b], 2).unwrap();
        assert_eq!(
            one[0].as_slice::<f32>().unwrap(),
            two[0].as_slice::<f32>().unwrap()
        );
        let (cs, cb) = (values(&[16], 4), values(&[16], 5));
        let inorm = Op::InstanceNorm(InstanceNorm { epsilon: 0.0 });
        let one = eval_threads(&inorm, &[&x, &cs, &cb], 1).unwrap();
        let two = eval_threads(&inorm, &[&x, &cs, &cb], 2).unwrap();
        assert_eq!(
            one[0].as_slice::<f32>().unwrap(),
            two[0].as_slice::<f32>().unwrap()
        );
        // Scale 1, bias 0: each plane is standardised.
        let ones = crate::Tensor::from_vec(&[16], vec![1.0f32; 16]).unwrap();
        let zeros = crate::Tensor::from_vec(&[16], vec![0.0f32; 16]).unwrap();
        let y = eval_threads(&inorm, &[&x, &ones, &zeros], 2).unwrap();
        for plane in y[0].as_slice::<f32>().unwrap().chunks(256) {
            let mean = plane.iter().map(|&v| v as f64).sum::<f64>() / 256.0;
            let var = plane
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / 256.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
    }
}

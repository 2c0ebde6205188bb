//! One-column integer products for the recurrent steps of dynamically quantized LSTM/GRU layers:
//! `y[m] = sx·scale[m]·Σ_k w[m][k]·x[k]` (stored, or added to `y`), with weight rows and
//! activations (already minus their zero point) held as i16, so that LLVM turns the dot products
//! into `vpmaddwd` / `smlal` loops. A 16-column panel of [`super::QWeights`] would waste 15 of
//! its 16 columns on a batch of one.

/// Sums of `w[m][k]·x[k]` are exact in i32 for `k` below 2^15 with |w| ≤ 128, |x| ≤ 255.
#[inline(always)]
fn body(w: &[i16], k: usize, x: &[i16], sx: f32, scale: &[f32], y: &mut [f32], accumulate: bool) {
    for ((row, s), out) in w.chunks_exact(k).zip(scale).zip(y.iter_mut()) {
        let acc: i32 = row
            .iter()
            .zip(&x[..k])
            .map(|(&a, &b)| a as i32 * b as i32)
            .sum();
        let v = acc as f32 * (sx * s);
        if accumulate {
            *out += v;
        } else {
            *out = v;
        }
    }
}

/// `y[m] (+)= sx·scale[m]·Σ_k w[m·k + k']·x[k']` for `m < y.len()`. Panics if `w` holds fewer
/// than `y.len()` rows of `k`, or `x` / `scale` are short.
pub fn gemv(
    w: &[i16],
    k: usize,
    x: &[i16],
    sx: f32,
    scale: &[f32],
    y: &mut [f32],
    accumulate: bool,
) {
    let m = y.len();
    assert!(
        w.len() >= m * k && x.len() >= k && scale.len() >= m && k < 1 << 15,
        "qgemm::gemv: operands do not match {m} rows of {k}"
    );
    let w = &w[..m * k];
    if k == 0 {
        // No products: every row is 0.
        if !accumulate {
            y.fill(0.0);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(
            w: &[i16],
            k: usize,
            x: &[i16],
            sx: f32,
            scale: &[f32],
            y: &mut [f32],
            accumulate: bool,
        ) {
            body(w, k, x, sx, scale, y, accumulate)
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked on the line above).
            return unsafe { avx2(w, k, x, sx, scale, y, accumulate) };
        }
    }
    body(w, k, x, sx, scale, y, accumulate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemv_matches_the_definition() {
        let (m, k) = (37, 131);
        let w: Vec<i16> = (0..m * k).map(|i| ((i * 37 % 256) as i16) - 128).collect();
        let x: Vec<i16> = (0..k).map(|i| ((i * 91 % 511) as i16) - 255).collect();
        let scale: Vec<f32> = (0..m).map(|i| 0.001 * (i + 1) as f32).collect();
        let mut y = vec![1.0f32; m];
        gemv(&w, k, &x, 0.5, &scale, &mut y, true);
        for r in 0..m {
            let acc: i64 = (0..k).map(|c| w[r * k + c] as i64 * x[c] as i64).sum();
            let want = 1.0 + acc as f64 * 0.5 * scale[r] as f64;
            assert!(
                (y[r] as f64 - want).abs() < 1e-3 * want.abs().max(1.0),
                "row {r}"
            );
        }
        gemv(&w, k, &x, 0.5, &scale, &mut y, false);
        let acc0: i64 = (0..k).map(|c| w[c] as i64 * x[c] as i64).sum();
        assert!((y[0] as f64 - acc0 as f64 * 0.5 * 0.001).abs() < 1e-3);
    }
}

//! Bias correction (Nagel et al., "Data-Free Quantization", 2019): rounding the weights shifts
//! each output channel's mean by `(W_q − W) · E[x]`; subtracting that shift from the f32 bias
//! removes the systematic part of the weight error. `E[x]` is the per-channel mean of the layer's
//! input, measured during calibration.

use edgefuse_runtime::ir::Op;

/// The output shift per output channel of `op` (Conv or Gemm) whose weight `w` (shape `shape`)
/// became `wq` (dequantized), for an input with per-channel means `mean`. None when the shapes do
/// not fit this simple model.
pub fn shift(op: &Op, w: &[f32], wq: &[f32], shape: &[usize], mean: &[f64]) -> Option<Vec<f64>> {
    match op {
        Op::Conv(c) => {
            let (m, cg) = (*shape.first()?, *shape.get(1)?);
            let k: usize = shape[2..].iter().product();
            let per_group = m / c.group.max(1);
            if per_group == 0 || cg * c.group != mean.len() {
                return None;
            }
            Some(
                (0..m)
                    .map(|o| {
                        let g = o / per_group;
                        (0..cg)
                            .map(|ci| {
                                let base = (o * cg + ci) * k;
                                let d: f64 = (base..base + k).map(|i| (wq[i] - w[i]) as f64).sum();
                                d * mean[g * cg + ci]
                            })
                            .sum()
                    })
                    .collect(),
            )
        }
        Op::Gemm(gm) => {
            let (r, c) = (*shape.first()?, *shape.get(1)?);
            // y[n] = alpha · Σ_k x[k] · B[k, n]  (B = W, or Wᵀ with trans_b).
            let (kdim, n) = if gm.trans_b { (c, r) } else { (r, c) };
            if kdim != mean.len() {
                return None;
            }
            let at = |k: usize, j: usize| if gm.trans_b { j * c + k } else { k * c + j };
            Some(
                (0..n)
                    .map(|j| {
                        gm.alpha as f64
                            * (0..kdim)
                                .map(|k| (wq[at(k, j)] - w[at(k, j)]) as f64 * mean[k])
                                .sum::<f64>()
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgefuse_runtime::ir::ops::Gemm;

    #[test]
    fn gemm_shift_is_the_weight_error_times_the_input_mean() {
        let op = Op::Gemm(Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false,
            act: None,
        });
        // B is 2×2 (K×N); only B[1,0] is off by 0.5; mean x = [1, 2] → shift [1.0, 0].
        let s = shift(
            &op,
            &[1.0, 2.0, 3.0, 4.0],
            &[1.0, 2.0, 3.5, 4.0],
            &[2, 2],
            &[1.0, 2.0],
        );
        assert_eq!(s, Some(vec![1.0, 0.0]));
    }
}

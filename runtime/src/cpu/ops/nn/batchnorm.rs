//! CPU kernel for inference BatchNormalization: `y = x · a[c] + b[c]` with
//! `a = scale / sqrt(var + ε)` and `b = B − mean · a`, folded at build time when the four
//! parameters are constants, else derived per channel while running.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::BatchNorm;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

struct BatchNormKernel {
    n: usize,
    c: usize,
    /// Elements per (n, c) plane.
    inner: usize,
    epsilon: f32,
    /// Per-channel (a, b), when the parameters were constants.
    folded: Option<Vec<(f32, f32)>>,
}

fn fold(epsilon: f32, scale: f32, bias: f32, mean: f32, var: f32) -> (f32, f32) {
    let a = scale / (var + epsilon).sqrt();
    (a, bias - mean * a)
}

pub fn build(op: &BatchNorm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    if b.inputs.iter().any(|f| f.dtype != DType::F32) {
        return unsupported("BatchNormalization on non-f32 tensors");
    }
    let x = &b.inputs[0];
    let c = x.shape[1];
    let params: Option<Vec<&[f32]>> = b
        .consts
        .get(1..5)
        .and_then(|p| p.iter().map(|v| v.map(|v| v.typed::<f32>())).collect());
    let folded = params.map(|p| {
        (0..c)
            .map(|i| fold(op.epsilon, p[0][i], p[1][i], p[2][i], p[3][i]))
            .collect()
    });
    Ok(Box::new(BatchNormKernel {
        n: x.shape[0],
        c,
        inner: x.shape[2..].iter().product(),
        epsilon: op.epsilon,
        folded,
    }))
}

impl CpuKernel for BatchNormKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let [scale, bias, mean, var] = [1, 2, 3, 4].map(|i| inputs[i].typed::<f32>());
        let y = outputs[0].typed::<f32>();
        let planes = x[..self.n * self.c * self.inner]
            .chunks_exact(self.inner.max(1))
            .zip(y.chunks_exact_mut(self.inner.max(1)));
        for (i, (xp, yp)) in planes.enumerate() {
            let ch = i % self.c;
            let (a, b) = match &self.folded {
                Some(f) => f[ch],
                None => fold(self.epsilon, scale[ch], bias[ch], mean[ch], var[ch]),
            };
            for (o, v) in yp.iter_mut().zip(xp) {
                *o = v * a + b;
            }
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

    #[test]
    fn batchnorm_normalises_per_channel() {
        for shape in [vec![2, 3, 4, 5], vec![3, 4], vec![1, 6, 10]] {
            let c = shape[1];
            let x = tensor(&shape, 1);
            let scale = tensor(&[c], 2);
            let bias = tensor(&[c], 3);
            let mean = tensor(&[c], 4);
            let var = Tensor::from_vec(&[c], (0..c).map(|i| 0.5 + i as f32).collect()).unwrap();
            let eps = 1e-5;
            let inner: usize = shape[2..].iter().product();
            let p = |t: &Tensor, i: usize| t.as_slice::<f32>().unwrap()[i];
            let want: Vec<f32> = x
                .as_slice::<f32>()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ch = i / inner % c;
                    (v - p(&mean, ch)) / (p(&var, ch) + eps).sqrt() * p(&scale, ch) + p(&bias, ch)
                })
                .collect();
            let op = Op::BatchNorm(BatchNorm { epsilon: eps });
            let inputs = [&x, &scale, &bias, &mean, &var];
            // Constant parameters (folded at build) and runtime parameters.
            let got = crate::cpu::ops::eval(&op, &inputs).unwrap();
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, "constant params");
            let got = run_op(&op, &inputs, 1);
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, "runtime params");
        }
    }
}

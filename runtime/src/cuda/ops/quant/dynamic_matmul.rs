//! DynamicQuantizeMatMul on the GPU: X quantized into scratch as DynamicQuantizeLinear does
//! (`dynamic_quantize::DynQuantize`), then the product as QGemm runs it — a 1×1 QConv over
//! `rows` images of K channels, W `[K, N]` transposed once at build to the filter `[N, K, 1, 1]`
//! — reading the run's zero point and scale from device memory (`QConvKernel::launch_on`).
//! The sums are exact and the epilogue is `acc·(sx·w_scale[n]) + B[n]` in the CPU's f32 steps,
//! so the outputs are the CPU's (and onnxruntime's).

use super::dynamic_quantize::{over_quantized, Quantized};
use super::{qconv, qgemm};
use crate::cuda::ops::{BuildCtx, CudaKernel, Support};
use crate::ir::ops::{DynamicQuantizeMatMul, QConv};
use crate::ir::Fact;
use crate::tensor::{DType, TensorView};
use crate::{Error, Result};

fn as_qconv(op: &DynamicQuantizeMatMul) -> QConv {
    over_quantized(
        qgemm::one_by_one(op.has_bias, None),
        &op.w_scale,
        &op.w_zero_point,
    )
}

/// X `[.., K]` as bytes `[rows, K, 1, 1]`, W `[K, N]` as `[N, K, 1, 1]`, Y `[.., N]` as
/// `[rows, N, 1, 1]`.
fn conv_facts(inputs: &[Fact], outputs: &[Fact]) -> (Vec<Fact>, Vec<Fact>) {
    let (x, w, y) = (&inputs[0], &inputs[1], &outputs[0]);
    let (k, n) = (w.shape[0], w.shape[1]);
    let rows = x.len() / k.max(1);
    let mut fin = vec![
        Fact::new(DType::U8, vec![rows, k, 1, 1]),
        Fact::new(w.dtype, vec![n, k, 1, 1]),
    ];
    fin.extend(inputs.get(2).cloned());
    (fin, vec![Fact::new(y.dtype, vec![rows, n, 1, 1])])
}

pub fn supports(op: &DynamicQuantizeMatMul, inputs: &[Fact], outputs: &[Fact]) -> Support {
    if inputs[0].dtype != DType::F32 {
        return Err(format!("DynamicQuantizeMatMul of {}", inputs[0].dtype));
    }
    if inputs[1].rank() != 2 || inputs[1].is_empty() {
        return Err(format!(
            "DynamicQuantizeMatMul with W {:?}",
            inputs[1].shape
        ));
    }
    let (fin, fout) = conv_facts(inputs, outputs);
    qconv::supports(&as_qconv(op), &fin, &fout)
        .map_err(|e| e.replace("QConv", "DynamicQuantizeMatMul"))
}

/// `w` (`[K, N]`, one byte each) transposed to `[N, K]`.
fn transpose(w: &[u8], k: usize, n: usize) -> Vec<u8> {
    let mut t = vec![0u8; w.len()];
    for (r, row) in w.chunks_exact(n).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * k + r] = v;
        }
    }
    t
}

pub fn build(op: &DynamicQuantizeMatMul, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (fin, fout) = conv_facts(b.inputs, b.outputs);
    let w = b.consts.get(1).copied().flatten().ok_or_else(|| {
        Error::Unsupported("DynamicQuantizeMatMul weights that are not a constant".into())
    })?;
    let (k, n) = (fin[1].shape[1], fin[1].shape[0]);
    let wt = transpose(w.data, k, n);
    let mut consts: Vec<Option<TensorView>> = b.consts.to_vec();
    consts[1] = Some(TensorView {
        dtype: w.dtype,
        shape: &fin[1].shape,
        data: &wt,
    });
    let conv = qconv::build_kernel(
        &as_qconv(op),
        &BuildCtx {
            dev: b.dev,
            inputs: &fin,
            outputs: &fout,
            consts: &consts,
            fused: None,
            prologue: None,
        },
    )?;
    Ok(Box::new(Quantized::new(b.dev, b.inputs[0].len(), conv)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::check;
    use crate::ir::Op;
    use crate::Tensor;

    #[test]
    fn w_is_transposed_to_output_rows() {
        // [[1, 2, 3], [4, 5, 6]] (K 2, N 3) → [[1, 4], [2, 5], [3, 6]].
        assert_eq!(transpose(&[1, 2, 3, 4, 5, 6], 2, 3), [1, 4, 2, 5, 3, 6]);
        let x = Fact::new(DType::F32, vec![2, 3, 8]);
        let w = Fact::new(DType::U8, vec![8, 5]);
        let y = Fact::new(DType::F32, vec![2, 3, 5]);
        let (fin, fout) = conv_facts(&[x, w], &[y]);
        assert_eq!(fin[0], Fact::new(DType::U8, vec![6, 8, 1, 1]));
        assert_eq!(fin[1].shape, [5, 8, 1, 1]);
        assert_eq!(fout[0].shape, [6, 5, 1, 1]);
    }

    /// u8 weights with per-column zero points and a bias, and symmetric i8 weights per tensor
    /// (the dp4a kernel), at batch 1 and over a [3, 4] batch, against the CPU.
    #[test]
    fn dynamic_matmul_matches_the_cpu() {
        let (k, n) = (48, 20);
        let bytes = |dtype: DType| {
            let mut t = Tensor::zeros(dtype, &[k, n]);
            for (i, b) in t.bytes_mut().iter_mut().enumerate() {
                *b = ((i * 89 + 5) % 253) as u8;
            }
            t
        };
        let bias = Tensor::from_vec(&[n], (0..n).map(|i| i as f32 * 0.05 - 0.5).collect()).unwrap();
        for rows in [vec![1], vec![3, 4]] {
            let len = rows.iter().product::<usize>() * k;
            let x: Vec<f32> = (0..len)
                .map(|i| ((i * 29 % 97) as f32 - 40.0) * 0.07)
                .collect();
            let mut shape = rows.clone();
            shape.push(k);
            let x = Tensor::from_vec(&shape, x).unwrap();
            let per_column = DynamicQuantizeMatMul {
                w_scale: (0..n).map(|c| 0.01 + 0.002 * c as f32).collect(),
                w_zero_point: (0..n).map(|c| 100 + c as i32).collect(),
                has_bias: true,
            };
            let ins = [x.clone(), bytes(DType::U8), bias.clone()];
            check(
                &Op::DynamicQuantizeMatMul(per_column),
                &ins,
                &[false, true, true],
                0.0,
            );
            let symmetric = DynamicQuantizeMatMul {
                w_scale: vec![0.02],
                w_zero_point: vec![0],
                has_bias: false,
            };
            let ins = [x, bytes(DType::I8)];
            check(
                &Op::DynamicQuantizeMatMul(symmetric),
                &ins,
                &[false, true],
                0.0,
            );
        }
    }
}

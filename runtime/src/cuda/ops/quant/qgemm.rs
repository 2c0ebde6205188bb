//! QGemm (`Y[r, n] = Σ_k X[r, k]·W[n, k] + B[n]` in integers, requantized) as what it is on
//! the GPU: a 1×1 QConv over `rows` images of K channels, so it runs the same kernels
//! (dp4a for symmetric i8 weights) and the same epilogue as the CPU's `stage`.

use super::qconv;
use crate::cuda::ops::{BuildCtx, CudaKernel, Support};
use crate::ir::ops::{Conv, QConv, QGemm, UnaryOp};
use crate::ir::Fact;
use crate::Result;

/// A 1×1 convolution, stride 1, no padding: what a product over rows is as a QConv.
pub(super) fn one_by_one(has_bias: bool, act: Option<UnaryOp>) -> Conv {
    Conv {
        kernel: vec![1, 1],
        strides: vec![1, 1],
        pads: vec![0; 4],
        dilations: vec![1, 1],
        group: 1,
        has_bias,
        act,
        residual: false,
    }
}

fn as_qconv(op: &QGemm) -> QConv {
    QConv {
        conv: one_by_one(op.has_bias, op.act),
        x: op.x,
        w_scale: op.w_scale.clone(),
        w_zero_point: op.w_zero_point.clone(),
        out: op.out,
    }
}

/// X [.., K] as [rows, K, 1, 1], W [N, K] as [N, K, 1, 1], Y [.., N] as [rows, N, 1, 1].
fn conv_facts(inputs: &[Fact], outputs: &[Fact]) -> (Vec<Fact>, Vec<Fact>) {
    let (x, w, y) = (&inputs[0], &inputs[1], &outputs[0]);
    let (n, k) = (w.shape[0], w.shape[1]);
    let rows = x.len() / k.max(1);
    let mut fin = vec![
        Fact::new(x.dtype, vec![rows, k, 1, 1]),
        Fact::new(w.dtype, vec![n, k, 1, 1]),
    ];
    fin.extend(inputs.get(2).cloned());
    (fin, vec![Fact::new(y.dtype, vec![rows, n, 1, 1])])
}

pub fn supports(op: &QGemm, inputs: &[Fact], outputs: &[Fact]) -> Support {
    if inputs[1].rank() != 2 {
        return Err(format!("QGemm with W of rank {}", inputs[1].rank()));
    }
    let (fin, fout) = conv_facts(inputs, outputs);
    qconv::supports(&as_qconv(op), &fin, &fout)
}

pub fn build(op: &QGemm, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (fin, fout) = conv_facts(b.inputs, b.outputs);
    let conv = BuildCtx {
        dev: b.dev,
        inputs: &fin,
        outputs: &fout,
        consts: b.consts,
        fused: None,
        prologue: None,
    };
    qconv::build(&as_qconv(op), &conv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::check;
    use crate::ir::ops::{QOut, QScale, UnaryOp};
    use crate::ir::Op;
    use crate::tensor::DType;
    use crate::Tensor;

    fn qgemm(out: QOut) -> QGemm {
        QGemm {
            x: QScale {
                scale: 0.02,
                zero_point: 9,
            },
            w_scale: (0..10).map(|i| 0.01 + i as f32 * 1e-3).collect(),
            w_zero_point: vec![0; 10],
            has_bias: true,
            act: Some(UnaryOp::Relu),
            out,
        }
    }

    #[test]
    fn a_qgemm_is_a_one_by_one_qconv() {
        let x = Fact::new(DType::U8, vec![3, 2, 12]);
        let w = Fact::new(DType::I8, vec![10, 12]);
        let b = Fact::new(DType::F32, vec![10]);
        let y = Fact::new(DType::U8, vec![3, 2, 10]);
        let (fin, fout) = conv_facts(&[x, w, b], &[y]);
        assert_eq!(fin[0].shape, [6, 12, 1, 1]);
        assert_eq!(fin[1].shape, [10, 12, 1, 1]);
        assert_eq!(fout[0].shape, [6, 10, 1, 1]);
        let out = QOut {
            dtype: DType::U8,
            q: Some(QScale {
                scale: 0.05,
                zero_point: 4,
            }),
        };
        let ins = [
            Fact::new(DType::U8, vec![3, 12]),
            Fact::new(DType::I8, vec![10, 12]),
            Fact::new(DType::F32, vec![10]),
        ];
        assert!(supports(&qgemm(out), &ins, &[Fact::new(DType::U8, vec![3, 10])]).is_ok());
    }

    #[test]
    fn qgemm_matches_the_cpu() {
        let bytes = |dtype: DType, shape: &[usize], seed: usize| {
            let mut t = Tensor::zeros(dtype, shape);
            for (i, b) in t.bytes_mut().iter_mut().enumerate() {
                *b = ((i * 131 + seed * 17) % 251) as u8;
            }
            t
        };
        let (x, w) = (
            bytes(DType::U8, &[3, 12], 1),
            bytes(DType::I8, &[10, 12], 2),
        );
        let bias =
            Tensor::from_vec(&[10], (0..10).map(|i| i as f32 * 0.1 - 0.4).collect()).unwrap();
        let q8 = QOut {
            dtype: DType::U8,
            q: Some(QScale {
                scale: 0.05,
                zero_point: 4,
            }),
        };
        let f32_out = QOut {
            dtype: DType::F32,
            q: None,
        };
        for (out, tol) in [(q8, 1.0 / 255.0), (f32_out, 1e-5)] {
            let inputs = [x.clone(), w.clone(), bias.clone()];
            check(&Op::QGemm(qgemm(out)), &inputs, &[false, true, true], tol);
        }
    }
}

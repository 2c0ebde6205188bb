//! CPU kernel for numpy-style MatMul: 1-D operands promoted, batch axes broadcast.
//!
//! Batch offsets of A and B are precomputed at build time; when B has a single batch item and
//! A's batches are contiguous, the whole product folds into one GEMM of M·batch rows.

use edgefuse_kernels::gemm::{sgemm, MatRef};

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::MatMul;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

struct MatMulKernel {
    m: usize,
    k: usize,
    n: usize,
    /// Element offsets into A and B for each output batch item.
    offsets: Vec<(usize, usize)>,
}

/// Row-major strides of `shape` right-aligned against `rank` axes, 0 on broadcast axes.
fn broadcast_strides(shape: &[usize], rank: usize, matrix: usize) -> Vec<usize> {
    let mut strides = vec![0; rank];
    let mut s = matrix;
    for (i, &d) in shape.iter().enumerate().rev() {
        if d != 1 {
            strides[rank - shape.len() + i] = s;
        }
        s *= d;
    }
    strides
}

pub fn build(_op: &MatMul, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    if b.inputs.iter().any(|f| f.dtype != DType::F32) {
        return unsupported("MatMul on non-f32 tensors");
    }
    let (ashape, bshape) = (&b.inputs[0].shape, &b.inputs[1].shape);
    let (batch, m, k, n, _) = MatMul::dims(ashape, bshape)?;
    let a_batch = &ashape[..ashape.len().saturating_sub(2)];
    let b_batch = &bshape[..bshape.len().saturating_sub(2)];
    let total: usize = batch.iter().product();
    let (a_items, b_items) = (
        a_batch.iter().product::<usize>(),
        b_batch.iter().product::<usize>(),
    );
    if b_items == 1 && a_items == total {
        // B is shared by every batch item and A's items are contiguous: one tall GEMM.
        return Ok(Box::new(MatMulKernel {
            m: m * total,
            k,
            n,
            offsets: vec![(0, 0)],
        }));
    }
    let sa = broadcast_strides(a_batch, batch.len(), m * k);
    let sb = broadcast_strides(b_batch, batch.len(), k * n);
    let offsets = (0..total)
        .map(|mut idx| {
            let (mut oa, mut ob) = (0, 0);
            for ax in (0..batch.len()).rev() {
                let i = idx % batch[ax];
                idx /= batch[ax];
                oa += i * sa[ax];
                ob += i * sb[ax];
            }
            (oa, ob)
        })
        .collect();
    Ok(Box::new(MatMulKernel { m, k, n, offsets }))
}

impl CpuKernel for MatMulKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let (m, k, n) = (self.m, self.k, self.n);
        let a = inputs[0].typed::<f32>();
        let b = inputs[1].typed::<f32>();
        let y = outputs[0].typed::<f32>();
        if y.is_empty() {
            return Ok(());
        }
        for (yb, &(oa, ob)) in y.chunks_exact_mut(m * n).zip(&self.offsets) {
            sgemm(
                m,
                n,
                k,
                MatRef::row_major(&a[oa..oa + m * k], m, k),
                MatRef::row_major(&b[ob..ob + k * n], k, n),
                yb,
                n,
                0.0,
                1.0,
                ctx.threads,
            );
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

    /// Numpy semantics spelled out: promote, broadcast the batch index, dot.
    fn naive(a: &Tensor, b: &Tensor) -> (Vec<usize>, Vec<f32>) {
        let (batch, m, k, n, out) = MatMul::dims(&a.shape, &b.shape).unwrap();
        let ab = &a.shape[..a.shape.len().saturating_sub(2)];
        let bb = &b.shape[..b.shape.len().saturating_sub(2)];
        let (av, bv) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
        let item = |shape: &[usize], full: &[usize]| -> usize {
            // Linear index into `shape` (right-aligned, broadcast) of the batch index `full`.
            let off = full.len() - shape.len();
            shape.iter().enumerate().fold(0, |acc, (i, &d)| {
                acc * d + if d == 1 { 0 } else { full[off + i] }
            })
        };
        let total: usize = batch.iter().product();
        let mut y = Vec::new();
        for t in 0..total {
            let mut idx = vec![0; batch.len()];
            let mut r = t;
            for ax in (0..batch.len()).rev() {
                idx[ax] = r % batch[ax];
                r /= batch[ax];
            }
            let (ia, ib) = (item(ab, &idx), item(bb, &idx));
            for i in 0..m {
                for j in 0..n {
                    y.push(
                        (0..k)
                            .map(|p| av[ia * m * k + i * k + p] * bv[ib * k * n + p * n + j])
                            .sum(),
                    );
                }
            }
        }
        (out, y)
    }

    #[test]
    fn matmul_broadcasts_batches_and_promotes_vectors() {
        let cases: [(&[usize], &[usize]); 11] = [
            (&[3, 4], &[4, 5]),
            (&[2, 3, 4], &[4, 5]),
            (&[3, 4], &[2, 4, 5]),
            (&[2, 1, 3, 4], &[3, 4, 5]),
            (&[2, 3, 3, 4], &[1, 4, 5]),
            (&[1, 3, 4], &[2, 4, 5]),
            (&[4], &[4, 5]),
            (&[3, 4], &[4]),
            (&[4], &[4]),
            (&[2, 3, 4], &[4]),
            (&[4], &[2, 4, 5]),
        ];
        for (i, (sa, sb)) in cases.into_iter().enumerate() {
            let a = tensor(sa, i as u64);
            let b = tensor(sb, 40 + i as u64);
            let (shape, want) = naive(&a, &b);
            let op = Op::MatMul(MatMul {});
            let what = format!("{sa:?} x {sb:?}");
            let got = crate::cpu::ops::eval(&op, &[&a, &b]).unwrap();
            assert_eq!(got[0].shape, shape, "{what}");
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, &what);
            let got = run_op(&op, &[&a, &b], 2);
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, &what);
        }
    }
}

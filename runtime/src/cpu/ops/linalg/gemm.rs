//! CPU kernel for ONNX Gemm: `Y = act(alpha · op(A) · op(B) + beta · C)`, transposes expressed
//! as strides (no copies), C broadcast by zero strides.

use edgefuse_kernels::gemm::{pack_b, sgemm, sgemm_packed_b, MatRef, PackedB};

use crate::cpu::ops::nn::conv::Epilogue;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Gemm;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

struct GemmKernel {
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    alpha: f32,
    beta: f32,
    /// Row and column strides of C broadcast to [M, N] (the column stride 0 or 1), when C is
    /// present and beta ≠ 0.
    c_strides: Option<(usize, usize)>,
    epilogue: Epilogue,
    /// op(B) packed for the GEMM at build, when B is a constant (weights).
    b_packed: Option<PackedB>,
}

pub fn build(op: &Gemm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    if b.inputs.iter().any(|f| f.dtype != DType::F32) {
        return unsupported("Gemm on non-f32 tensors");
    }
    let (a, y) = (&b.inputs[0], &b.outputs[0]);
    let (m, n) = (y.shape[0], y.shape[1]);
    let k = if op.trans_a { a.shape[0] } else { a.shape[1] };
    let c_strides = match b.inputs.get(2) {
        Some(c) if op.beta != 0.0 => {
            // Right-align C's shape against [M, N]; size-1 axes broadcast with stride 0.
            let mut dims = [1usize; 2];
            dims[2 - c.shape.len()..].copy_from_slice(&c.shape);
            let col = usize::from(dims[1] != 1);
            let row = if dims[0] != 1 { dims[1] } else { 0 };
            Some((row, col))
        }
        _ => None,
    };
    let b_packed = b.consts.get(1).and_then(|c| c.as_ref()).map(|c| {
        let data = c.typed::<f32>();
        let view = if op.trans_b {
            MatRef::transposed(data, k, n)
        } else {
            MatRef::row_major(data, k, n)
        };
        pack_b(view, k, n)
    });
    Ok(Box::new(GemmKernel {
        b_packed,
        m,
        n,
        k,
        trans_a: op.trans_a,
        trans_b: op.trans_b,
        alpha: op.alpha,
        beta: op.beta,
        c_strides,
        epilogue: Epilogue::new(op.act)?,
    }))
}

impl CpuKernel for GemmKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let (m, n, k) = (self.m, self.n, self.k);
        if m * n == 0 {
            return Ok(());
        }
        let a = inputs[0].typed::<f32>();
        let b = inputs[1].typed::<f32>();
        let y = &mut outputs[0].typed::<f32>()[..m * n];
        let a = if self.trans_a {
            MatRef::transposed(a, m, k)
        } else {
            MatRef::row_major(a, m, k)
        };
        let b = if self.trans_b {
            MatRef::transposed(b, k, n)
        } else {
            MatRef::row_major(b, k, n)
        };
        let keep = match self.c_strides {
            Some((rs, cs)) => {
                let c = inputs[2].typed::<f32>();
                for (i, row) in y.chunks_exact_mut(n).enumerate() {
                    // C's row along the row (its column stride is 1), or one value per row
                    // (0): both vectorise (ddddocr's 20 × 8,210 bias rows took 0.1 ms through
                    // the strides element by element).
                    if cs == 1 {
                        for (v, &b) in row.iter_mut().zip(&c[i * rs..][..n]) {
                            *v = self.beta * b;
                        }
                    } else {
                        row.fill(self.beta * c[i * rs]);
                    }
                }
                1.0
            }
            None => 0.0,
        };
        match &self.b_packed {
            Some(bp) => sgemm_packed_b(a, bp, y, n, keep, self.alpha, ctx.threads),
            None => sgemm(m, n, k, a, b, y, n, keep, self.alpha, ctx.threads),
        }
        self.epilogue.apply(0.0, y);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ops::nn::conv::tests::{act_ref, assert_close, run_op, tensor};
    use crate::ir::ops::UnaryOp;
    use crate::ir::Op;

    #[test]
    fn gemm_handles_transposes_and_c_broadcasts() {
        let (m, n, k) = (5, 7, 6);
        let c_shapes: [Option<Vec<usize>>; 6] = [
            None,
            Some(vec![]),
            Some(vec![n]),
            Some(vec![m, 1]),
            Some(vec![1, n]),
            Some(vec![m, n]),
        ];
        let mut seed = 0;
        for trans_a in [false, true] {
            for trans_b in [false, true] {
                for c_shape in &c_shapes {
                    for (alpha, beta, act) in [(1.0, 1.0, None), (0.5, -2.0, Some(UnaryOp::Relu))] {
                        seed += 1;
                        let a = tensor(&if trans_a { [k, m] } else { [m, k] }, seed);
                        let b = tensor(&if trans_b { [n, k] } else { [k, n] }, seed + 100);
                        let c = c_shape.as_ref().map(|s| tensor(s, seed + 200));
                        let (av, bv) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
                        let at = |i: usize, p: usize| {
                            if trans_a {
                                av[p * m + i]
                            } else {
                                av[i * k + p]
                            }
                        };
                        let bt = |p: usize, j: usize| {
                            if trans_b {
                                bv[j * k + p]
                            } else {
                                bv[p * n + j]
                            }
                        };
                        let cv = |i: usize, j: usize| -> f32 {
                            let Some(c) = &c else { return 0.0 };
                            let s = c.as_slice::<f32>().unwrap();
                            match c.shape.as_slice() {
                                [] => s[0],
                                [_] => s[j],
                                [1, _] => s[j],
                                [_, 1] => s[i],
                                _ => s[i * n + j],
                            }
                        };
                        let mut want = vec![0.0; m * n];
                        for i in 0..m {
                            for j in 0..n {
                                let dot: f32 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
                                want[i * n + j] = act_ref(act, alpha * dot + beta * cv(i, j));
                            }
                        }
                        let op = Op::Gemm(Gemm {
                            alpha,
                            beta,
                            trans_a,
                            trans_b,
                            act,
                        });
                        let mut inputs = vec![&a, &b];
                        if let Some(c) = &c {
                            inputs.push(c);
                        }
                        let what = format!("trans {trans_a}/{trans_b} C {c_shape:?} alpha {alpha}");
                        let got = crate::cpu::ops::eval(&op, &inputs).unwrap();
                        assert_close(got[0].as_slice::<f32>().unwrap(), &want, &what);
                        let got = run_op(&op, &inputs, 2);
                        assert_close(got[0].as_slice::<f32>().unwrap(), &want, &what);
                    }
                }
            }
        }
    }
}

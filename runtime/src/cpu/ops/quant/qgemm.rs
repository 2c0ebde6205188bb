//! CPU kernel for QGemm: `Y[r, n] = Σ_k X[r, k]·W[n, k] + B[n]` in integers, requantized.
//! Each row of X is a column of the integer GEMM; weights are packed when the kernel is built.

use edgefuse_kernels::qgemm::{Out, QKernel, QWeights, Source};

use super::requant::{constant, stage, weights_minus_zp, Domain, Stage};
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::QGemm;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

struct QGemmKernel {
    rows: usize,
    n: usize,
    k: usize,
    x: Domain,
    w: QWeights,
    stage: Stage,
    out_f32: bool,
}

pub fn build(op: &QGemm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (x, w, y) = (&b.inputs[0], &b.inputs[1], &b.outputs[0]);
    let (n, k) = (w.shape[0], w.shape[1]);
    let wv = constant(b.consts, 1, "QGemm weights")?;
    let bias = if op.has_bias {
        constant(b.consts, 2, "a QGemm bias")?
            .typed::<f32>()
            .to_vec()
    } else {
        Vec::new()
    };
    let xd = Domain::new(x.dtype, &op.x);
    let wq = weights_minus_zp(&wv, n, &op.w_zero_point);
    Ok(Box::new(QGemmKernel {
        rows: x.len() / k.max(1),
        n,
        k,
        x: xd,
        w: QWeights::new(QKernel::detect(), &wq, n, k, xd.zp),
        stage: stage(&op.out, op.act, op.x.scale, &op.w_scale, &bias, n)?,
        out_f32: y.dtype == DType::F32,
    }))
}

impl CpuKernel for QGemmKernel {
    fn scratch_bytes(&self) -> usize {
        self.w.scratch_bytes()
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        if self.rows == 0 || self.n == 0 {
            return Ok(());
        }
        let src = Source::Rows {
            x: inputs[0].data,
            ld: self.k,
        };
        let out = &mut outputs[0];
        let mut o = if self.out_f32 {
            Out::F32(out.typed::<f32>())
        } else {
            Out::Bytes(&mut *out.data)
        };
        self.w.run(
            &src,
            self.x.xor,
            self.rows,
            &self.stage.epi,
            &mut o,
            1,
            self.n,
            scratch,
        );
        if let (Some(post), Out::F32(f)) = (&self.stage.post, &mut o) {
            post.apply(0.0, f);
        }
        Ok(())
    }
}

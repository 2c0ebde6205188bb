//! MatMul through cuBLAS: `[.., M, K] × [K, N]` as one GEMM over all leading rows, and
//! `[B.., M, K] × [B.., K, N]` with equal batch shapes as one strided-batched GEMM.

use crate::cuda::blas::Gemm as BlasGemm;
use crate::cuda::device::Device;
use crate::cuda::ops::{check_float, BuildCtx, CudaKernel, Io, Support};
use crate::ir::Fact;
use crate::Result;

fn plan(inputs: &[Fact]) -> std::result::Result<BlasGemm, String> {
    let (a, b) = (&inputs[0], &inputs[1]);
    if a.dtype != b.dtype {
        return Err("MatMul with mixed dtypes".into());
    }
    if a.rank() < 2 || b.rank() < 2 {
        return Err("MatMul of a vector".into());
    }
    let (m, k) = (a.shape[a.rank() - 2], a.shape[a.rank() - 1]);
    let n = b.shape[b.rank() - 1];
    if b.rank() == 2 {
        let rows = a.len() / k.max(1);
        return Ok(BlasGemm::new(a.dtype, false, false, rows, n, k));
    }
    if a.shape[..a.rank() - 2] != b.shape[..b.rank() - 2] {
        return Err("MatMul with broadcast batch axes".into());
    }
    let mut g = BlasGemm::new(a.dtype, false, false, m, n, k);
    g.batch = a.shape[..a.rank() - 2].iter().product();
    g.stride_a = m * k;
    g.stride_b = k * n;
    g.stride_c = m * n;
    Ok(g)
}

pub fn supports(inputs: &[Fact], _outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    plan(inputs).map(|_| ())
}

struct MatMulKernel {
    gemm: BlasGemm,
}

pub fn build(b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let gemm = plan(b.inputs).map_err(crate::Error::Unsupported)?;
    gemm.check()?;
    b.dev.blas()?;
    Ok(Box::new(MatMulKernel { gemm }))
}

impl CudaKernel for MatMulKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: operands hold the matrices the plan derived from their facts.
        unsafe {
            self.gemm
                .run(dev.blas()?, io.inputs[0], io.inputs[1], io.outputs[0])
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::MatMul;
    use crate::ir::Op;

    #[test]
    fn matmul_matches_the_cpu() {
        let op = Op::MatMul(MatMul {});
        check(
            &op,
            &[values(&[2, 3, 8], 1), values(&[8, 5], 2)],
            &[false, true],
            1e-5,
        );
        check(
            &op,
            &[values(&[2, 3, 8], 1), values(&[2, 8, 5], 2)],
            &[false, false],
            1e-5,
        );
    }
}

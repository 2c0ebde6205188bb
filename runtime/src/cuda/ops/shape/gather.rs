//! Gather along an axis (`shape_gather_*`, i64 indices; `shape_gather_i32_*`, i32 indices).
//! Negative indices count from the end. An index out of range writes zeros: a CUDA graph cannot
//! return an error per element, and the CPU backend (which reports it) is the reference.

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{size_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Gather;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    match inputs[1].dtype {
        DType::I64 | DType::I32 => Ok(()),
        other => Err(format!("Gather with {other} indices")),
    }
}

struct GatherKernel {
    f: CudaFunction,
    outer: i64,
    axis_len: i64,
    n_idx: i64,
    inner: i64,
}

pub fn build(op: &Gather, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, idx) = (&b.inputs[0], &b.inputs[1]);
    let kind = if idx.dtype == DType::I32 {
        "gather_i32"
    } else {
        "gather"
    };
    Ok(Box::new(GatherKernel {
        f: b.dev
            .function(&format!("shape_{kind}_{}", size_suffix(x.dtype)))?,
        outer: x.shape[..op.axis].iter().product::<usize>() as i64,
        axis_len: x.shape[op.axis] as i64,
        n_idx: idx.len() as i64,
        inner: x.shape[op.axis + 1..].iter().product::<usize>() as i64,
    }))
}

impl CudaKernel for GatherKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let n = (self.outer * self.n_idx * self.inner) as usize;
        // SAFETY: (const T* x, const I* idx, T* y, i64 outer, i64 axis_len, i64 n_idx,
        // i64 inner); indices are range-checked in the kernel.
        unsafe {
            dev.launch(
                &self.f,
                n,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.inputs[1]),
                    arg(&io.outputs[0]),
                    arg(&self.outer),
                    arg(&self.axis_len),
                    arg(&self.n_idx),
                    arg(&self.inner),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::Gather;
    use crate::ir::Op;
    use crate::Tensor;

    #[test]
    fn embedding_lookup_matches_the_cpu() {
        let table = values(&[10, 4], 1);
        let idx = Tensor::from_vec(&[2, 3], vec![0i64, 9, -1, 3, 3, 5]).unwrap();
        check(
            &Op::Gather(Gather { axis: 0 }),
            &[table, idx],
            &[true, false],
            0.0,
        );
    }
}

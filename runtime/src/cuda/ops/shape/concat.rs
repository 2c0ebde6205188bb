//! Concat: one strided copy per input into its place along the axis of the output.

use super::{supports_ranks, StridedCopy};
use crate::cuda::device::Device;
use crate::cuda::ops::{strides, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Concat;
use crate::ir::Fact;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    supports_ranks(inputs)
}

struct ConcatKernel(Vec<StridedCopy>);

pub fn build(op: &Concat, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let so = strides(&b.outputs[0].shape);
    let mut offset = 0usize;
    let mut copies = Vec::with_capacity(b.inputs.len());
    for x in b.inputs {
        let base = offset as i64 * so[op.axis];
        copies.push(StridedCopy::new(
            b.dev,
            x.dtype,
            &x.shape,
            &strides(&x.shape),
            &so,
            0,
            base,
        )?);
        offset += x.shape[op.axis];
    }
    Ok(Box::new(ConcatKernel(copies)))
}

impl CudaKernel for ConcatKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        for (copy, &src) in self.0.iter().zip(io.inputs) {
            // SAFETY: each input lands inside the output at its offset along the axis.
            unsafe { copy.launch(dev, src, io.outputs[0])? };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::Concat;
    use crate::ir::Op;

    #[test]
    fn concat_matches_the_cpu() {
        let op = Op::Concat(Concat { axis: 1 });
        check(
            &op,
            &[values(&[2, 3, 4], 1), values(&[2, 5, 4], 2)],
            &[false, false],
            0.0,
        );
    }
}

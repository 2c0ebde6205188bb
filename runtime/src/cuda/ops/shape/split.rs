//! Split: one strided copy per output, each reading its part of the input along the axis.

use super::{supports_ranks, StridedCopy};
use crate::cuda::device::Device;
use crate::cuda::ops::{strides, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Split;
use crate::ir::Fact;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    supports_ranks(inputs)
}

struct SplitKernel(Vec<StridedCopy>);

pub fn build(op: &Split, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    let si = strides(&x.shape);
    let mut offset = 0usize;
    let mut copies = Vec::with_capacity(b.outputs.len());
    for y in b.outputs {
        let base = offset as i64 * si[op.axis];
        copies.push(StridedCopy::new(
            b.dev,
            x.dtype,
            &y.shape,
            &si,
            &strides(&y.shape),
            base,
            0,
        )?);
        offset += y.shape[op.axis];
    }
    Ok(Box::new(SplitKernel(copies)))
}

impl CudaKernel for SplitKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        for (copy, &dst) in self.0.iter().zip(io.outputs) {
            // SAFETY: each output reads its own range of the input along the axis.
            unsafe { copy.launch(dev, io.inputs[0], dst)? };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::Split;
    use crate::ir::Op;

    #[test]
    fn split_matches_the_cpu() {
        let op = Op::Split(Split {
            axis: 1,
            sizes: vec![2, 4],
        });
        check(&op, &[values(&[3, 6], 1)], &[false], 0.0);
    }
}

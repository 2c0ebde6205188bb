//! Transpose: one strided copy walking the output, reading the input through permuted strides.

use super::{supports_ranks, StridedCopy};
use crate::cuda::device::Device;
use crate::cuda::ops::{strides, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Transpose;
use crate::ir::Fact;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    supports_ranks(inputs)
}

struct TransposeKernel(StridedCopy);

pub fn build(op: &Transpose, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let si = strides(&x.shape);
    let ss: Vec<i64> = op.perm.iter().map(|&p| si[p]).collect();
    let copy = StridedCopy::new(b.dev, x.dtype, &y.shape, &ss, &strides(&y.shape), 0, 0)?;
    Ok(Box::new(TransposeKernel(copy)))
}

impl CudaKernel for TransposeKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: permuted strides of the input stay inside it; the output is contiguous.
        unsafe { self.0.launch(dev, io.inputs[0], io.outputs[0]) }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::Transpose;
    use crate::ir::Op;

    #[test]
    fn transpose_matches_the_cpu() {
        let op = Op::Transpose(Transpose {
            perm: vec![2, 0, 1],
        });
        check(&op, &[values(&[3, 4, 5], 1)], &[false], 0.0);
    }
}

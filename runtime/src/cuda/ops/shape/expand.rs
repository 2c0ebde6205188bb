//! Expand: one strided copy reading the input with stride 0 on broadcast axes.

use super::{supports_ranks, StridedCopy};
use crate::cuda::device::Device;
use crate::cuda::ops::{strides, BuildCtx, CudaKernel, Io, Support};
use crate::ir::Fact;
use crate::Result;

pub fn supports(inputs: &[Fact], outputs: &[Fact]) -> Support {
    supports_ranks(inputs)?;
    supports_ranks(outputs)
}

struct ExpandKernel(StridedCopy);

pub fn build(b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let pad = y.rank() - x.rank();
    let si = strides(&x.shape);
    let ss: Vec<i64> = (0..y.rank())
        .map(|k| {
            if k < pad || x.shape[k - pad] == 1 {
                0
            } else {
                si[k - pad]
            }
        })
        .collect();
    let copy = StridedCopy::new(b.dev, x.dtype, &y.shape, &ss, &strides(&y.shape), 0, 0)?;
    Ok(Box::new(ExpandKernel(copy)))
}

impl CudaKernel for ExpandKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: broadcast axes read with stride 0; the others stay inside the input.
        unsafe { self.0.launch(dev, io.inputs[0], io.outputs[0]) }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::Expand;
    use crate::ir::Op;

    #[test]
    fn expand_matches_the_cpu() {
        let op = Op::Expand(Expand {
            shape: vec![2, 3, 4],
        });
        check(&op, &[values(&[3, 1], 1)], &[false], 0.0);
    }
}

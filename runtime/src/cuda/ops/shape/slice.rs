//! Slice: one strided copy (input strides times steps, from the first selected element;
//! negative steps walk backwards), like the CPU kernel.

use super::{supports_ranks, StridedCopy};
use crate::cuda::device::Device;
use crate::cuda::ops::{strides, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Slice;
use crate::ir::Fact;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    supports_ranks(inputs)
}

struct SliceKernel(StridedCopy);

pub fn build(op: &Slice, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    let si = strides(&x.shape);
    // An axis read at most once never takes its step, which may then be any i64 (as the CPU
    // kernel: below two reads the shape check bounds |step| by the axis).
    let ss: Vec<i64> = si
        .iter()
        .zip(&op.steps)
        .zip(&op.lens)
        .map(|((&s, &st), &n)| if n < 2 { 0 } else { s * st })
        .collect();
    let base = if op.lens.contains(&0) {
        0
    } else {
        si.iter()
            .zip(&op.starts)
            .map(|(&s, &st)| s * st as i64)
            .sum()
    };
    let copy = StridedCopy::new(b.dev, x.dtype, &op.lens, &ss, &strides(&op.lens), base, 0)?;
    Ok(Box::new(SliceKernel(copy)))
}

impl CudaKernel for SliceKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: the IR checked that every selected element is inside the input.
        unsafe { self.0.launch(dev, io.inputs[0], io.outputs[0]) }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::Slice;
    use crate::ir::Op;

    #[test]
    fn slice_matches_the_cpu() {
        let op = Op::Slice(Slice {
            starts: vec![1, 4],
            steps: vec![1, -2],
            lens: vec![2, 3],
        });
        check(&op, &[values(&[3, 6], 1)], &[false], 0.0);
    }
}

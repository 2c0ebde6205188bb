//! CPU kernel for Split: the inverse of Concat, block by block. Any dtype.

use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Split;
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &Split, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let inner: usize = x.shape[op.axis + 1..].iter().product::<usize>() * x.dtype.size();
    Ok(Box::new(SplitKernel {
        outer: x.shape[..op.axis].iter().product(),
        blocks: op.sizes.iter().map(|&s| s * inner).collect(),
    }))
}

struct SplitKernel {
    outer: usize,
    /// Bytes each output takes per outer index.
    blocks: Vec<usize>,
}

impl CpuKernel for SplitKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].data;
        let mut at = 0;
        for o in 0..self.outer {
            for (out, &len) in outputs.iter_mut().zip(&self.blocks) {
                out.data[o * len..(o + 1) * len].copy_from_slice(&x[at..at + len]);
                at += len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Split};
    use crate::Tensor;

    #[test]
    fn uneven_split_along_last_axis() {
        let x = Tensor::from_vec(&[2, 5], (0..10).map(|v| v as f32).collect()).unwrap();
        let got = eval(
            &Op::Split(Split {
                axis: 1,
                sizes: vec![2, 0, 3],
            }),
            &[&x],
        )
        .unwrap();
        assert_eq!(got[0].shape, vec![2, 2]);
        assert_eq!(got[0].as_slice::<f32>().unwrap(), &[0.0, 1.0, 5.0, 6.0]);
        assert_eq!(got[1].shape, vec![2, 0]);
        assert_eq!(
            got[2].as_slice::<f32>().unwrap(),
            &[2.0, 3.0, 4.0, 7.0, 8.0, 9.0]
        );
        let got = eval(
            &Op::Split(Split {
                axis: 0,
                sizes: vec![1, 1],
            }),
            &[&x],
        )
        .unwrap();
        assert_eq!(
            got[1].as_slice::<f32>().unwrap(),
            &[5.0, 6.0, 7.0, 8.0, 9.0]
        );
    }
}

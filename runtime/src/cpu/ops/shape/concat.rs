//! CPU kernel for Concat: for each index before the axis, each input's contiguous block in turn.
//! Any dtype.

use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Concat;
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &Concat, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let first = &b.inputs[0];
    let elsize = first.dtype.size();
    let outer = first.shape[..op.axis].iter().product();
    let blocks = b
        .inputs
        .iter()
        .map(|f| f.shape[op.axis..].iter().product::<usize>() * elsize)
        .collect();
    Ok(Box::new(ConcatKernel { outer, blocks }))
}

struct ConcatKernel {
    outer: usize,
    /// Bytes each input contributes per outer index.
    blocks: Vec<usize>,
}

impl CpuKernel for ConcatKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let out = &mut *outputs[0].data;
        let mut at = 0;
        for o in 0..self.outer {
            for (x, &len) in inputs.iter().zip(&self.blocks) {
                out[at..at + len].copy_from_slice(&x.data[o * len..(o + 1) * len]);
                at += len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Concat, Op};
    use crate::Tensor;

    #[test]
    fn along_first_and_inner_axes() {
        let a = Tensor::from_vec(&[2, 2], vec![1i64, 2, 3, 4]).unwrap();
        let b = Tensor::from_vec(&[1, 2], vec![5i64, 6]).unwrap();
        let got = eval(&Op::Concat(Concat { axis: 0 }), &[&a, &b]).unwrap();
        assert_eq!(got[0].shape, vec![3, 2]);
        assert_eq!(got[0].as_slice::<i64>().unwrap(), &[1, 2, 3, 4, 5, 6]);
        let c = Tensor::from_vec(&[2, 1], vec![7.0f32, 8.0]).unwrap();
        let d = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let got = eval(&Op::Concat(Concat { axis: 1 }), &[&c, &d, &c]).unwrap();
        assert_eq!(got[0].shape, vec![2, 5]);
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            &[7.0, 1.0, 2.0, 3.0, 7.0, 8.0, 4.0, 5.0, 6.0, 8.0]
        );
        // Shape arithmetic: 1-D i64 pieces, one of them empty.
        let e = Tensor::from_vec::<i64>(&[0], vec![]).unwrap();
        let s = Tensor::from_vec(&[2], vec![1i64, 3]).unwrap();
        let got = eval(
            &Op::Concat(Concat { axis: 0 }),
            &[&s, &e, &Tensor::from_vec(&[1], vec![-1i64]).unwrap()],
        )
        .unwrap();
        assert_eq!(got[0].as_slice::<i64>().unwrap(), &[1, 3, -1]);
    }
}

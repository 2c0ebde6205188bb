//! CPU kernel for Gather: [outer, axis, inner] → [outer, indices…, inner], copying inner blocks.
//! Any data dtype; i64 or i32 indices, negative ones counting from the end. An index out of range
//! is an error naming it, never a panic.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Gather;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

pub fn build(op: &Gather, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (x, idx) = (&b.inputs[0], &b.inputs[1]);
    if !matches!(idx.dtype, DType::I64 | DType::I32) || op.axis >= x.rank() {
        return unsupported(format!("Gather with {} indices", idx.dtype));
    }
    Ok(Box::new(GatherKernel {
        outer: x.shape[..op.axis].iter().product(),
        axis_len: x.shape[op.axis],
        block: x.shape[op.axis + 1..].iter().product::<usize>() * x.dtype.size(),
    }))
}

struct GatherKernel {
    outer: usize,
    axis_len: usize,
    /// Bytes per gathered slice.
    block: usize,
}

impl GatherKernel {
    fn gather(
        &self,
        x: &[u8],
        out: &mut [u8],
        idx: impl Iterator<Item = i64> + Clone,
    ) -> Result<()> {
        let n = self.axis_len as i64;
        // Validate before writing anything.
        if let Some(bad) = idx.clone().find(|&i| i < -n || i >= n) {
            return Err(Error::invalid(format!(
                "Gather index {bad} is out of range for an axis of size {n}"
            )));
        }
        let len = self.block;
        let mut at = 0;
        for o in 0..self.outer {
            let src = &x[o * self.axis_len * len..(o + 1) * self.axis_len * len];
            for i in idx.clone() {
                let i = if i < 0 { i + n } else { i } as usize;
                out[at..at + len].copy_from_slice(&src[i * len..(i + 1) * len]);
                at += len;
            }
        }
        Ok(())
    }
}

impl CpuKernel for GatherKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (x, idx) = (&inputs[0], &inputs[1]);
        let out = &mut *outputs[0].data;
        match idx.dtype {
            DType::I64 => self.gather(x.data, out, idx.typed::<i64>().iter().copied()),
            _ => self.gather(x.data, out, idx.typed::<i32>().iter().map(|&i| i as i64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Gather, Op};
    use crate::Tensor;

    #[test]
    fn gathers_rows_and_columns() {
        let x = Tensor::from_vec(&[3, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let i = Tensor::from_vec(&[2, 2], vec![0i64, -1, 1, 2]).unwrap();
        let got = eval(&Op::Gather(Gather { axis: 0 }), &[&x, &i]).unwrap();
        assert_eq!(got[0].shape, vec![2, 2, 2]);
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            &[1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 5.0, 6.0]
        );
        let i = Tensor::from_vec(&[3], vec![1i32, 0, -2]).unwrap();
        let got = eval(&Op::Gather(Gather { axis: 1 }), &[&x, &i]).unwrap();
        assert_eq!(got[0].shape, vec![3, 3]);
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            &[2.0, 1.0, 1.0, 4.0, 3.0, 3.0, 6.0, 5.0, 5.0]
        );
    }

    #[test]
    fn scalar_index_on_shape_vector() {
        let shape = Tensor::from_vec(&[4], vec![1i64, 3, 224, 224]).unwrap();
        let got = eval(
            &Op::Gather(Gather { axis: 0 }),
            &[&shape, &Tensor::scalar(-3i64)],
        )
        .unwrap();
        assert_eq!(got[0].shape, Vec::<usize>::new());
        assert_eq!(got[0].as_slice::<i64>().unwrap(), &[3]);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let x = Tensor::from_vec(&[3], vec![1i64, 2, 3]).unwrap();
        for bad in [3i64, -4] {
            let i = Tensor::from_vec(&[2], vec![0i64, bad]).unwrap();
            let err = eval(&Op::Gather(Gather { axis: 0 }), &[&x, &i]).unwrap_err();
            assert!(err.to_string().contains(&bad.to_string()), "{err}");
        }
    }
}

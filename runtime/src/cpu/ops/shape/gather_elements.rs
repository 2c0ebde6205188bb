//! CPU kernel for GatherElements: each output element is the input element at the same position
//! except along `axis`, where the index says. Any data dtype (copied as bytes); i64 or i32
//! indices, negative ones counting from the end. An index out of range is an error naming it,
//! checked before anything is written.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::GatherElements;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

/// The highest rank the kernel's position counter holds.
const MAX_RANK: usize = 16;

pub fn build(op: &GatherElements, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (x, idx) = (&b.inputs[0], &b.inputs[1]);
    if !matches!(idx.dtype, DType::I64 | DType::I32)
        || op.axis >= x.rank()
        || idx.rank() != x.rank()
        || x.rank() > MAX_RANK
    {
        return unsupported(format!("GatherElements with {} indices", idx.dtype));
    }
    // Strides (in elements) of the input; the output walks the indices' shape.
    let rank = x.rank();
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * x.shape[d + 1];
    }
    Ok(Box::new(GatherElementsKernel {
        axis: op.axis,
        shape: idx.shape.clone(),
        strides,
        axis_len: x.shape[op.axis],
        size: x.dtype.size(),
    }))
}

struct GatherElementsKernel {
    axis: usize,
    /// The indices' (and the output's) shape.
    shape: Vec<usize>,
    /// The input's strides in elements.
    strides: Vec<usize>,
    axis_len: usize,
    /// Bytes per element.
    size: usize,
}

impl GatherElementsKernel {
    fn gather(
        &self,
        x: &[u8],
        out: &mut [u8],
        idx: impl Iterator<Item = i64> + Clone,
    ) -> Result<()> {
        let n = self.axis_len as i64;
        if let Some(bad) = idx.clone().find(|&i| i < -n || i >= n) {
            return Err(Error::invalid(format!(
                "GatherElements index {bad} is out of range for an axis of size {n}"
            )));
        }
        let rank = self.shape.len();
        let size = self.size;
        // The output position as a counter over `shape`, and its input offset without the axis.
        let mut pos = [0usize; MAX_RANK];
        let mut base = 0usize;
        for (e, i) in idx.enumerate() {
            let i = if i < 0 { i + n } else { i } as usize;
            let src = (base + i * self.strides[self.axis]) * size;
            out[e * size..(e + 1) * size].copy_from_slice(&x[src..src + size]);
            // Advance the counter; `base` follows every axis but `axis`.
            for d in (0..rank).rev() {
                pos[d] += 1;
                if d != self.axis {
                    base += self.strides[d];
                }
                if pos[d] < self.shape[d] {
                    break;
                }
                if d != self.axis {
                    base -= self.strides[d] * pos[d];
                }
                pos[d] = 0;
            }
        }
        Ok(())
    }
}

impl CpuKernel for GatherElementsKernel {
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
    use crate::ir::ops::{GatherElements, Op};
    use crate::Tensor;

    #[test]
    fn an_index_out_of_range_is_an_error() {
        let x = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let op = Op::GatherElements(GatherElements { axis: 1 });
        let ok = Tensor::from_vec(&[2, 2], vec![-1i64, 0, 2, 1]).unwrap();
        let y = eval(&op, &[&x, &ok]).unwrap();
        assert_eq!(y[0].as_slice::<f32>().unwrap(), &[3.0, 1.0, 6.0, 5.0]);
        for bad in [3i64, -4] {
            let idx = Tensor::from_vec(&[2, 2], vec![0, bad, 0, 0]).unwrap();
            let e = eval(&op, &[&x, &idx]).unwrap_err().to_string();
            assert!(e.contains(&format!("index {bad} is out of range")), "{e}");
        }
    }
}

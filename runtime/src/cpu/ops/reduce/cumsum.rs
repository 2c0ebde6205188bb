//! CPU kernel for CumSum: running sums along one axis of `[outer, axis, inner]`, forwards or
//! in reverse, inclusive or exclusive. f32 sums in order (as onnxruntime); integers wrap.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::CumSum;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &CumSum, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    if !matches!(x.dtype, DType::F32 | DType::I64 | DType::I32) || op.axis >= x.rank() {
        return unsupported(format!("CumSum on {}", x.dtype));
    }
    Ok(Box::new(CumSumKernel {
        op: op.clone(),
        dtype: x.dtype,
        outer: x.shape[..op.axis].iter().product(),
        len: x.shape[op.axis],
        inner: x.shape[op.axis + 1..].iter().product(),
    }))
}

struct CumSumKernel {
    op: CumSum,
    dtype: DType,
    outer: usize,
    len: usize,
    inner: usize,
}

impl CumSumKernel {
    fn typed<T: Copy + Default>(&self, x: &[T], out: &mut [T], add: impl Fn(T, T) -> T) {
        let (len, inner) = (self.len, self.inner);
        for o in 0..self.outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                let mut acc = T::default();
                for step in 0..len {
                    let k = if self.op.reverse {
                        len - 1 - step
                    } else {
                        step
                    };
                    let at = base + k * inner;
                    if self.op.exclusive {
                        out[at] = acc;
                        acc = add(acc, x[at]);
                    } else {
                        acc = add(acc, x[at]);
                        out[at] = acc;
                    }
                }
            }
        }
    }
}

impl CpuKernel for CumSumKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (x, out) = (&inputs[0], &mut outputs[0]);
        match self.dtype {
            DType::F32 => self.typed(x.typed::<f32>(), out.typed::<f32>(), |a, b| a + b),
            DType::I64 => self.typed(x.typed::<i64>(), out.typed::<i64>(), i64::wrapping_add),
            _ => self.typed(x.typed::<i32>(), out.typed::<i32>(), i32::wrapping_add),
        }
        Ok(())
    }
}

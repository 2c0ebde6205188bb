//! CPU kernel for ArgMax / ArgMin: the input seen as `[outer, axis, inner]`, one i64 index per
//! (outer, inner) pair. A candidate replaces the best only when strictly better (or, with
//! `last`, at least as good), so NaN never wins after the first element, as onnxruntime.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{ArgReduce, OpInfo as _};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &ArgReduce, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let ok = matches!(
        x.dtype,
        DType::F32 | DType::I64 | DType::I32 | DType::U8 | DType::I8
    );
    if !ok || op.axis >= x.rank() || x.shape[op.axis] == 0 {
        return unsupported(format!("{} on {} {:?}", op.name(), x.dtype, x.shape));
    }
    Ok(Box::new(ArgKernel {
        op: op.clone(),
        dtype: x.dtype,
        outer: x.shape[..op.axis].iter().product(),
        len: x.shape[op.axis],
        inner: x.shape[op.axis + 1..].iter().product(),
    }))
}

struct ArgKernel {
    op: ArgReduce,
    dtype: DType,
    outer: usize,
    len: usize,
    inner: usize,
}

impl ArgKernel {
    fn typed<T: Copy + PartialOrd>(&self, x: &[T], out: &mut [i64]) {
        let (len, inner) = (self.len, self.inner);
        let (max, last) = (self.op.max, self.op.last);
        let better = |v: T, best: T| match (max, last) {
            (true, false) => v > best,
            (true, true) => v >= best,
            (false, false) => v < best,
            (false, true) => v <= best,
        };
        for o in 0..self.outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                let (mut best, mut at) = (x[base], 0);
                for k in 1..len {
                    let v = x[base + k * inner];
                    if better(v, best) {
                        (best, at) = (v, k);
                    }
                }
                out[o * inner + i] = at as i64;
            }
        }
    }
}

impl CpuKernel for ArgKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = &inputs[0];
        let out = outputs[0].typed::<i64>();
        match self.dtype {
            DType::F32 => self.typed(x.typed::<f32>(), out),
            DType::I64 => self.typed(x.typed::<i64>(), out),
            DType::I32 => self.typed(x.typed::<i32>(), out),
            DType::I8 => self.typed(x.typed::<i8>(), out),
            _ => self.typed(x.data, out),
        }
        Ok(())
    }
}

//! CPU kernel for LpNormalization: `x / ‖x‖_p` along one axis (p 1 or 2), the input seen as
//! `[outer, axis, inner]`; a vector whose norm is 0 gives zeros, as onnxruntime.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::LpNorm;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &LpNorm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    if x.dtype != DType::F32 || op.axis >= x.rank() || !matches!(op.p, 1 | 2) {
        return unsupported(format!("LpNormalization p={} on {}", op.p, x.dtype));
    }
    Ok(Box::new(LpNormKernel {
        outer: x.shape[..op.axis].iter().product(),
        len: x.shape[op.axis],
        inner: x.shape[op.axis + 1..].iter().product(),
        p: op.p,
    }))
}

struct LpNormKernel {
    outer: usize,
    len: usize,
    inner: usize,
    p: u8,
}

impl CpuKernel for LpNormKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let out = outputs[0].typed::<f32>();
        let (len, inner) = (self.len, self.inner);
        for o in 0..self.outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                let along = (0..len).map(|k| x[base + k * inner]);
                let norm = if self.p == 1 {
                    along.map(f32::abs).sum::<f32>()
                } else {
                    along.map(|v| v * v).sum::<f32>().sqrt()
                };
                for k in 0..len {
                    let at = base + k * inner;
                    out[at] = if norm == 0.0 { 0.0 } else { x[at] / norm };
                }
            }
        }
        Ok(())
    }
}

//! CPU kernel for InstanceNormalization: each item's channel plane of `[N, C, …]` normalised,
//! times the channel's scale, plus its bias.

use super::normalize_rows;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::InstanceNorm;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &InstanceNorm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    if x.dtype != DType::F32 || x.rank() < 3 {
        return unsupported(format!(
            "InstanceNormalization on {} {:?}",
            x.dtype, x.shape
        ));
    }
    Ok(Box::new(InstanceNormKernel {
        channels: x.shape[1],
        plane: x.shape[2..].iter().product(),
        eps: op.epsilon,
    }))
}

struct InstanceNormKernel {
    channels: usize,
    plane: usize,
    eps: f32,
}

impl CpuKernel for InstanceNormKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let (scale, bias) = (inputs[1].typed::<f32>(), inputs[2].typed::<f32>());
        let c = self.channels;
        let out = outputs[0].typed::<f32>();
        normalize_rows(x, out, self.plane, self.eps, ctx.threads, |r, _, v| {
            v * scale[r % c] + bias[r % c]
        });
        Ok(())
    }
}

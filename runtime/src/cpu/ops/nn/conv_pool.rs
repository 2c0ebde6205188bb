//! Conv carrying a max pool (`fold_maxpool_into_conv`): the convolution into scratch, then the
//! pool from there into the output. The CPU gains nothing from the fold but one node; the GPU's
//! direct kernel computes the pooled output itself (`cuda::ops::nn::conv_direct`).

use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Conv, ConvPool, OpInfo};
use crate::ir::Fact;
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

struct ConvPoolKernel {
    conv: Box<dyn CpuKernel>,
    pool: Box<dyn CpuKernel>,
    /// The convolution's own output, before the pool.
    mid: Fact,
    /// Its bytes in scratch, rounded up to the 64-byte alignment scratch slices keep.
    mid_bytes: usize,
}

pub fn build(op: &Conv, pool: &ConvPool, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let inner = op.unpooled();
    let mid = inner.infer(b.inputs)?.remove(0);
    let conv = super::conv::build(
        &inner,
        &BuildCtx {
            inputs: b.inputs,
            outputs: std::slice::from_ref(&mid),
            consts: b.consts,
        },
    )?;
    let pool = super::pool::build(
        &pool.as_pool(),
        &BuildCtx {
            inputs: std::slice::from_ref(&mid),
            outputs: b.outputs,
            consts: &[None],
        },
    )?;
    let mid_bytes = (mid.len() * mid.dtype.size()).div_ceil(64) * 64;
    Ok(Box::new(ConvPoolKernel {
        conv,
        pool,
        mid,
        mid_bytes,
    }))
}

impl CpuKernel for ConvPoolKernel {
    fn scratch_bytes(&self) -> usize {
        self.mid_bytes + self.conv.scratch_bytes().max(self.pool.scratch_bytes())
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let (mid, rest) = scratch.split_at_mut(self.mid_bytes);
        let len = self.mid.len() * self.mid.dtype.size();
        let mut out = [TensorViewMut {
            dtype: self.mid.dtype,
            shape: &self.mid.shape,
            data: &mut mid[..len],
        }];
        self.conv.run(inputs, &mut out, rest, ctx)?;
        let pooled = [TensorView {
            dtype: self.mid.dtype,
            shape: &self.mid.shape,
            data: &mid[..len],
        }];
        self.pool.run(&pooled, outputs, rest, ctx)
    }
}

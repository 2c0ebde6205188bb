//! Conv (1-D and 2-D; grouped and depthwise; dilations; auto_pad).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Conv, Op};
use edgefuse_runtime::ir::Fact;

use super::{check_spatial_rank, window};
use crate::onnx::NodeCtx;

pub fn conv(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 3)?;
    let bias = ctx.opt_input(2);
    let op = conv_op(
        ctx,
        &ctx.input_fact(0)?,
        &ctx.input_fact(1)?,
        bias.is_some(),
    )?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    inputs.extend(bias);
    ctx.emit_outputs(op, &inputs)
}

/// The Conv op of this node's attributes for input `x` and weight `w` (also ConvInteger's).
pub(crate) fn conv_op(ctx: &NodeCtx, x: &Fact, w: &Fact, has_bias: bool) -> Result<Op> {
    if x.rank() < 3 || w.rank() != x.rank() {
        bail!(
            "input {:?} and weight {:?} must both be [N, C, ...] of the same rank",
            x.shape,
            w.shape
        );
    }
    let kernel = ctx.usizes_attr("kernel_shape", w.shape[2..].to_vec())?;
    let win = window(ctx, &x.shape[2..], kernel)?;
    check_spatial_rank("convolution", &win.kernel)?;
    Ok(Op::Conv(Conv {
        kernel: win.kernel,
        strides: win.strides,
        pads: win.pads,
        dilations: win.dilations,
        group: ctx.usize_attr("group", 1)?,
        has_bias,
        act: None,
        residual: false,
    }))
}

//! ArgMax / ArgMin, TopK (k a constant) and CumSum (axis a constant).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{ArgReduce, CumSum, Op, TopK};

use crate::onnx::context::norm_axis;
use crate::onnx::NodeCtx;

pub fn arg(ctx: &mut NodeCtx, max: bool) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let rank = ctx.input_fact(0)?.rank();
    let op = ArgReduce {
        max,
        axis: norm_axis(ctx.int("axis", 0)?, rank)?,
        keepdims: ctx.int("keepdims", 1)? != 0,
        last: ctx.int("select_last_index", 0)? != 0,
    };
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::ArgReduce(op), &[x])
}

/// K is an attribute before opset 10, a one-element constant input from 10.
pub fn topk(ctx: &mut NodeCtx) -> Result<()> {
    let k = if ctx.opset < 10 {
        ctx.expect_inputs(1, 1)?;
        ctx.int("k", -1)?
    } else {
        ctx.expect_inputs(2, 2)?;
        match ctx.const_i64s(1, "K")?.as_slice() {
            [k] => *k,
            v => bail!("K must hold one value, got {}", v.len()),
        }
    };
    let shape = ctx.input_fact(0)?.shape;
    let axis = norm_axis(ctx.int("axis", -1)?, shape.len())?;
    let Some(k) = usize::try_from(k).ok().filter(|&k| k <= shape[axis]) else {
        bail!(
            "K = {k} is outside 0..={} (axis {axis} of {shape:?})",
            shape[axis]
        );
    };
    // sorted = 0 leaves the order to the implementation: the sorted order is one.
    let op = TopK {
        axis,
        k,
        largest: ctx.int("largest", 1)? != 0,
    };
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::TopK(op), &[x])
}

pub fn cumsum(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let rank = ctx.input_fact(0)?.rank();
    let axis = match ctx.const_i64s(1, "axis")?.as_slice() {
        [a] => norm_axis(*a, rank)?,
        v => bail!("the axis must hold one value, got {}", v.len()),
    };
    let op = CumSum {
        axis,
        exclusive: ctx.int("exclusive", 0)? != 0,
        reverse: ctx.int("reverse", 0)? != 0,
    };
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::CumSum(op), &[x])
}

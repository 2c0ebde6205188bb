//! Reduce* ops: axes from the attribute (older opsets) or a constant input (newer).

use anyhow::Result;
use edgefuse_runtime::ir::ops::{Op, Reduce, ReduceOp, Unary, UnaryOp};

use crate::onnx::context::norm_axis;
use crate::onnx::NodeCtx;

/// `axes_input_since`: the opset from which axes are the second input.
pub fn reduce(ctx: &mut NodeCtx, op: ReduceOp, axes_input_since: i64) -> Result<()> {
    let rank = ctx.input_fact(0)?.rank();
    let axes: Option<Vec<i64>> = if ctx.opset >= axes_input_since {
        ctx.expect_inputs(1, 2)?;
        match ctx.opt_input(1) {
            Some(_) => Some(ctx.const_i64s(1, "axes")?),
            None => None,
        }
    } else {
        ctx.expect_inputs(1, 1)?;
        ctx.attr_ints("axes")?
    };
    let x = ctx.input(0)?;
    let axes = axes.filter(|a| !a.is_empty());
    let mut axes: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<_>>()?,
        // No reduction, but the element-wise part still applies: ReduceL2 is |x|.
        None if ctx.int("noop_with_empty_axes", 0)? != 0 => {
            return match op {
                ReduceOp::L2 => ctx.emit_outputs(Op::Unary(Unary { op: UnaryOp::Abs }), &[x]),
                _ => ctx.set_output(0, x),
            };
        }
        None => (0..rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    let op = Op::Reduce(Reduce {
        op,
        axes,
        keepdims: ctx.int("keepdims", 1)? != 0,
    });
    ctx.emit_outputs(op, &[x])
}

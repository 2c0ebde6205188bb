//! Softmax / LogSoftmax. Before opset 13 they normalise over the input flattened from `axis` on;
//! unless `axis` is the last one, that is Reshape to 2-D, Softmax on axis 1, Reshape back.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{Op, Reshape, Softmax};

use crate::onnx::NodeCtx;

pub fn softmax(ctx: &mut NodeCtx, log: bool) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    let shape = ctx.fact(x).shape;
    let rank = shape.len();
    if ctx.opset >= 13 {
        let axis = ctx.axis(ctx.int("axis", -1)?, rank)?;
        return ctx.emit_outputs(Op::Softmax(Softmax { axis, log }), &[x]);
    }
    let axis = ctx.axis(ctx.int("axis", 1)?, rank)?;
    if axis + 1 == rank {
        return ctx.emit_outputs(Op::Softmax(Softmax { axis, log }), &[x]);
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis..].iter().product();
    let flat = ctx.emit1(
        Op::Reshape(Reshape {
            shape: vec![outer, inner],
        }),
        &[x],
    )?;
    let sm = ctx.emit1(Op::Softmax(Softmax { axis: 1, log }), &[flat])?;
    let out = ctx.emit1(Op::Reshape(Reshape { shape }), &[sm])?;
    ctx.set_output(0, out)
}

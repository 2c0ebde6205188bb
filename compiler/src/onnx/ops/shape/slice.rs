//! Slice: constant starts/ends/axes/steps (inputs from opset 10) resolved with ONNX clamping into
//! the IR's per-axis start/step/length.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Op, Slice};
use edgefuse_runtime::ir::TensorId;

use crate::onnx::context::norm_axis;
use crate::onnx::NodeCtx;

/// One axis of an ONNX slice, clamped: (start, len).
pub fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Result<(usize, usize)> {
    if step == 0 {
        bail!("slice step is zero");
    }
    let d = dim as i128;
    let (start, end, step) = (start as i128, end as i128, step as i128);
    let norm = |v: i128| if v < 0 { v + d } else { v };
    if step > 0 {
        let s = norm(start).clamp(0, d);
        let e = norm(end).clamp(0, d);
        let len = if e > s { (e - s + step - 1) / step } else { 0 };
        Ok((s as usize, len as usize))
    } else {
        if d == 0 {
            return Ok((0, 0));
        }
        let s = norm(start).clamp(0, d - 1);
        let e = norm(end).clamp(-1, d - 1);
        let len = if s > e {
            (s - e + (-step) - 1) / (-step)
        } else {
            0
        };
        Ok((s as usize, len as usize))
    }
}

/// Emits a Slice over `x` for the given (axis, start, end, step) entries; other axes are whole.
pub fn emit_slice(
    ctx: &mut NodeCtx,
    x: TensorId,
    parts: &[(usize, i64, i64, i64)],
) -> Result<TensorId> {
    let shape = ctx.fact(x).shape;
    let r = shape.len();
    let mut starts = vec![0; r];
    let mut steps = vec![1i64; r];
    let mut lens = shape.clone();
    let mut seen = vec![false; r];
    for &(axis, s, e, st) in parts {
        if std::mem::replace(&mut seen[axis], true) {
            bail!("axis {axis} is sliced twice");
        }
        let (start, len) = slice_axis(shape[axis], s, e, st)?;
        starts[axis] = start;
        steps[axis] = st;
        lens[axis] = len;
    }
    if lens == shape && steps.iter().all(|&s| s == 1) {
        return Ok(x);
    }
    ctx.emit1(
        Op::Slice(Slice {
            starts,
            steps,
            lens,
        }),
        &[x],
    )
}

pub fn slice(ctx: &mut NodeCtx) -> Result<()> {
    let x = ctx.input(0)?;
    let r = ctx.fact(x).rank();
    let (starts, ends, axes, steps) = if ctx.opset >= 10 {
        ctx.expect_inputs(3, 5)?;
        let starts = ctx.const_i64s(1, "starts")?;
        let ends = ctx.const_i64s(2, "ends")?;
        let axes = match ctx.opt_input(3) {
            Some(_) => Some(ctx.const_i64s(3, "axes")?),
            None => None,
        };
        let steps = match ctx.opt_input(4) {
            Some(_) => Some(ctx.const_i64s(4, "steps")?),
            None => None,
        };
        (starts, ends, axes, steps)
    } else {
        ctx.expect_inputs(1, 1)?;
        let starts = ctx.attr_ints("starts")?.unwrap_or_default();
        let ends = ctx.attr_ints("ends")?.unwrap_or_default();
        (starts, ends, ctx.attr_ints("axes")?, None)
    };
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        bail!("starts, ends, axes and steps differ in length");
    }
    let parts: Vec<(usize, i64, i64, i64)> = (0..n)
        .map(|i| Ok((norm_axis(axes[i], r)?, starts[i], ends[i], steps[i])))
        .collect::<Result<_>>()?;
    let out = emit_slice(ctx, x, &parts)?;
    ctx.set_output(0, out)
}

#[cfg(test)]
mod tests {
    use super::slice_axis;

    #[test]
    fn clamping() {
        assert_eq!(slice_axis(4, -1, i64::MIN + 1, -1).unwrap(), (3, 4));
        assert_eq!(slice_axis(10, 1, i64::MAX, 2).unwrap(), (1, 5));
        assert_eq!(slice_axis(10, 0, 129, 1).unwrap(), (0, 10));
        assert_eq!(slice_axis(10, 5, 2, 1).unwrap(), (5, 0));
        assert_eq!(slice_axis(10, -3, -1, 1).unwrap(), (7, 2));
        assert!(slice_axis(10, 0, 1, 0).is_err());
    }
}

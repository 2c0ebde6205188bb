//! Transpose, Concat, Gather, GatherElements, Cast, Expand, Split.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::broadcast_shapes;
use edgefuse_runtime::ir::ops::{
    Cast, Concat, Expand, Gather, GatherElements, Op, Split, Transpose,
};
use edgefuse_runtime::DType;

use crate::onnx::context::{norm_axis, to_usizes};
use crate::onnx::{dtype_from_onnx, NodeCtx};

pub fn transpose(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let r = ctx.input_fact(0)?.rank();
    let perm = match ctx.attr_ints("perm")? {
        Some(p) => to_usizes(&p, "perm")?,
        None => (0..r).rev().collect(),
    };
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::Transpose(Transpose { perm }), &[x])
}

pub fn concat(ctx: &mut NodeCtx) -> Result<()> {
    let n = ctx.n_inputs();
    if n == 0 {
        bail!("needs at least one input");
    }
    let Some(axis) = ctx.attr_int("axis")? else {
        bail!("axis is required");
    };
    let r = ctx.input_fact(0)?.rank();
    let axis = norm_axis(axis, r)?;
    let inputs: Vec<_> = (0..n).map(|i| ctx.input(i)).collect::<Result<_>>()?;
    ctx.emit_outputs(Op::Concat(Concat { axis }), &inputs)
}

pub fn gather(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let r = ctx.input_fact(0)?.rank();
    let axis = norm_axis(ctx.int("axis", 0)?, r)?;
    // Constant indices are checked here, so that the file cannot fail on every run.
    if let Some(t) = ctx
        .input_const(1)
        .filter(|t| matches!(t.dtype, DType::I64 | DType::I32))
    {
        let n = ctx.input_fact(0)?.shape[axis] as i64;
        if let Some(bad) = t.to_i64_vec()?.into_iter().find(|&i| i < -n || i >= n) {
            bail!("index {bad} is out of range for axis {axis} of size {n}");
        }
    }
    let inputs = [ctx.input(0)?, ctx.input(1)?];
    ctx.emit_outputs(Op::Gather(Gather { axis }), &inputs)
}

pub fn gather_elements(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let r = ctx.input_fact(0)?.rank();
    let axis = norm_axis(ctx.int("axis", 0)?, r)?;
    let inputs = [ctx.input(0)?, ctx.input(1)?];
    ctx.emit_outputs(Op::GatherElements(GatherElements { axis }), &inputs)
}

pub fn cast(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let Some(to) = ctx.attr_int("to")? else {
        bail!("attribute \"to\" is required");
    };
    let to = dtype_from_onnx(i32::try_from(to).unwrap_or(-1))?;
    let x = ctx.input(0)?;
    if ctx.fact(x).dtype == to {
        return ctx.set_output(0, x);
    }
    ctx.emit_outputs(Op::Cast(Cast { to }), &[x])
}

pub fn expand(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let input = ctx.input_fact(0)?.shape;
    let target = to_usizes(&ctx.const_i64s(1, "shape")?, "the target shape")?;
    let shape = broadcast_shapes(&input, &target).map_err(|e| anyhow::anyhow!("{e}"))?;
    let x = ctx.input(0)?;
    if shape == input {
        return ctx.set_output(0, x);
    }
    ctx.emit_outputs(Op::Expand(Expand { shape }), &[x])
}

pub fn split(ctx: &mut NodeCtx) -> Result<()> {
    let input = ctx.input_fact(0)?.shape;
    let axis = norm_axis(ctx.int("axis", 0)?, input.len())?;
    let sizes: Option<Vec<i64>> = if ctx.opset >= 13 {
        ctx.expect_inputs(1, 2)?;
        match ctx.opt_input(1) {
            Some(_) => Some(ctx.const_i64s(1, "split")?),
            None => None,
        }
    } else {
        ctx.expect_inputs(1, 1)?;
        ctx.attr_ints("split")?
    };
    let dim = input[axis];
    let sizes = match sizes {
        Some(s) => to_usizes(&s, "split sizes")?,
        None => {
            let n = match ctx.attr_int("num_outputs")? {
                Some(n) if n > 0 => n as usize,
                Some(n) => bail!("num_outputs must be positive, got {n}"),
                None => ctx.n_outputs(),
            };
            if n == 0 {
                bail!("has no outputs");
            }
            if n != ctx.n_outputs() {
                bail!(
                    "num_outputs is {n} but the node lists {} outputs",
                    ctx.n_outputs()
                );
            }
            let chunk = dim.div_ceil(n);
            if ctx.opset < 18 && dim % n != 0 {
                bail!("cannot split {dim} into {n} equal parts");
            }
            (0..n)
                .map(|i| chunk.min(dim.saturating_sub(i * chunk)))
                .collect()
        }
    };
    if sizes.len() != ctx.n_outputs() {
        bail!(
            "{} split sizes for {} outputs",
            sizes.len(),
            ctx.n_outputs()
        );
    }
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::Split(Split { axis, sizes }), &[x])
}

//! Tile, DepthToSpace and SpaceToDepth, written as existing movement ops: Tile is a Reshape that
//! puts a 1 before every repeated axis, an Expand of those 1s to the repeat counts and a Reshape
//! that merges each pair; DepthToSpace/SpaceToDepth are Reshape → Transpose → Reshape, as the
//! ONNX specification defines them. Both backends run these (views, strided copies).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Expand, Op, Reshape, Transpose};

use crate::onnx::context::to_usizes;
use crate::onnx::NodeCtx;

pub fn tile(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let shape = ctx.input_fact(0)?.shape;
    let repeats = to_usizes(&ctx.const_i64s(1, "repeats")?, "repeats")?;
    if repeats.len() != shape.len() {
        bail!(
            "{} repeats for an input of rank {}",
            repeats.len(),
            shape.len()
        );
    }
    let x = ctx.input(0)?;
    if repeats.iter().all(|&r| r == 1) {
        return ctx.set_output(0, x);
    }
    let (mut split, mut expanded, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for (&d, &r) in shape.iter().zip(&repeats) {
        if r != 1 {
            split.push(1);
            expanded.push(r);
        }
        split.push(d);
        expanded.push(d);
        let Some(n) = d.checked_mul(r) else {
            bail!("repeats {repeats:?} of {shape:?} overflow");
        };
        out.push(n);
    }
    let s = ctx.emit1(Op::Reshape(Reshape { shape: split }), &[x])?;
    let e = ctx.emit1(Op::Expand(Expand { shape: expanded }), &[s])?;
    let y = ctx.emit1(Op::Reshape(Reshape { shape: out }), &[e])?;
    ctx.set_output(0, y)
}

/// The `[N, C, H, W]` input's shape and the block size, checked.
fn block(ctx: &NodeCtx) -> Result<([usize; 4], usize)> {
    ctx.expect_inputs(1, 1)?;
    let shape = ctx.input_fact(0)?.shape;
    let Ok(s) = <[usize; 4]>::try_from(shape.as_slice()) else {
        bail!("needs a 4-D input, got {shape:?}");
    };
    let b = ctx.usize_attr("blocksize", 0)?;
    if b == 0 {
        bail!("blocksize must be at least 1");
    }
    Ok((s, b))
}

fn rearrange(
    ctx: &mut NodeCtx,
    split: Vec<usize>,
    perm: Vec<usize>,
    out: Vec<usize>,
) -> Result<()> {
    let x = ctx.input(0)?;
    let s = ctx.emit1(Op::Reshape(Reshape { shape: split }), &[x])?;
    let t = ctx.emit1(Op::Transpose(Transpose { perm }), &[s])?;
    let y = ctx.emit1(Op::Reshape(Reshape { shape: out }), &[t])?;
    ctx.set_output(0, y)
}

pub fn depth_to_space(ctx: &mut NodeCtx) -> Result<()> {
    let ([n, c, h, w], b) = block(ctx)?;
    let bb = b.saturating_mul(b);
    if c % bb != 0 {
        bail!("{c} channels do not divide into blocks of {b}×{b}");
    }
    let out = vec![n, c / bb, h.saturating_mul(b), w.saturating_mul(b)];
    match ctx.string("mode", "DCR")?.as_str() {
        "DCR" => rearrange(
            ctx,
            vec![n, b, b, c / bb, h, w],
            vec![0, 3, 4, 1, 5, 2],
            out,
        ),
        "CRD" => rearrange(
            ctx,
            vec![n, c / bb, b, b, h, w],
            vec![0, 1, 4, 2, 5, 3],
            out,
        ),
        m => bail!("DepthToSpace mode \"{m}\" is not DCR or CRD"),
    }
}

pub fn space_to_depth(ctx: &mut NodeCtx) -> Result<()> {
    let ([n, c, h, w], b) = block(ctx)?;
    if h % b != 0 || w % b != 0 {
        bail!("{h}×{w} does not divide into blocks of {b}×{b}");
    }
    let split = vec![n, c, h / b, b, w / b, b];
    let out = vec![n, c.saturating_mul(b).saturating_mul(b), h / b, w / b];
    rearrange(ctx, split, vec![0, 3, 5, 1, 2, 4], out)
}

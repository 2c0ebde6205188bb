//! Reshape, Flatten, Squeeze, Unsqueeze: all become `Op::Reshape` with the static output shape.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Op, Reshape};

use crate::onnx::context::norm_axis;
use crate::onnx::NodeCtx;

fn emit_reshape(ctx: &mut NodeCtx, shape: Vec<usize>) -> Result<()> {
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::Reshape(Reshape { shape }), &[x])
}

/// ONNX Reshape target: 0 copies the input dim (unless `allowzero`), -1 is inferred.
pub fn reshape_target(input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            -1 => bail!("shape {target:?} has more than one -1"),
            0 if !allowzero => match input.get(i) {
                Some(&v) => out.push(v),
                None => {
                    bail!("shape {target:?} copies dimension {i}, which the input {input:?} lacks")
                }
            },
            d if d >= 0 => out.push(d as usize),
            d => bail!("shape {target:?} has an invalid dimension {d}"),
        }
    }
    let total: usize = input.iter().product();
    let product = |v: &[usize]| v.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if let Some(i) = infer {
        match product(&out) {
            Some(known) if known != 0 && total.is_multiple_of(known) => out[i] = total / known,
            _ => bail!("cannot reshape {input:?} into {target:?}"),
        }
    }
    if product(&out) != Some(total) {
        bail!("cannot reshape {input:?} into {target:?}");
    }
    Ok(out)
}

pub fn reshape(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let input = ctx.input_fact(0)?.shape;
    let target = ctx.const_i64s(1, "shape")?;
    let allowzero = ctx.int("allowzero", 0)? != 0;
    let shape = reshape_target(&input, &target, allowzero)?;
    emit_reshape(ctx, shape)
}

pub fn flatten(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let input = ctx.input_fact(0)?.shape;
    let r = input.len();
    // Flatten's axis ranges over [-r, r].
    let axis = ctx.int("axis", 1)?;
    let axis = if axis == r as i64 {
        r
    } else {
        norm_axis(axis, r)?
    };
    let outer = input[..axis].iter().product();
    let inner = input[axis..].iter().product();
    emit_reshape(ctx, vec![outer, inner])
}

/// Axes of Squeeze/Unsqueeze: attribute before opset 13, optional input from 13.
fn axes(ctx: &NodeCtx) -> Result<Option<Vec<i64>>> {
    if ctx.opset >= 13 {
        ctx.expect_inputs(1, 2)?;
        match ctx.opt_input(1) {
            Some(_) => Ok(Some(ctx.const_i64s(1, "axes")?)),
            None => Ok(None),
        }
    } else {
        ctx.expect_inputs(1, 1)?;
        ctx.attr_ints("axes")
    }
}

pub fn squeeze(ctx: &mut NodeCtx) -> Result<()> {
    let input = ctx.input_fact(0)?.shape;
    let r = input.len();
    let shape = match axes(ctx)? {
        None => input.iter().copied().filter(|&d| d != 1).collect(),
        Some(a) => {
            let a: Vec<usize> = a.iter().map(|&x| norm_axis(x, r)).collect::<Result<_>>()?;
            for &i in &a {
                if input[i] != 1 {
                    bail!("cannot squeeze axis {i} of {input:?}: it is not 1");
                }
            }
            input
                .iter()
                .enumerate()
                .filter(|(i, _)| !a.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }
    };
    emit_reshape(ctx, shape)
}

pub fn unsqueeze(ctx: &mut NodeCtx) -> Result<()> {
    let input = ctx.input_fact(0)?.shape;
    let Some(a) = axes(ctx)? else {
        bail!("axes are required");
    };
    let r = input.len() + a.len();
    let mut a: Vec<usize> = a.iter().map(|&x| norm_axis(x, r)).collect::<Result<_>>()?;
    a.sort_unstable();
    if a.windows(2).any(|w| w[0] == w[1]) {
        bail!("repeated axes {a:?}");
    }
    let mut it = input.iter();
    let shape = (0..r)
        .map(|i| {
            if a.contains(&i) {
                1
            } else {
                *it.next().unwrap_or(&1)
            }
        })
        .collect();
    emit_reshape(ctx, shape)
}

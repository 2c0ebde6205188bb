//! Pad: constant pads (input from opset 11, optional axes from 18); negative pads crop via Slice.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Op, Pad, PadMode};

use super::slice::emit_slice;
use crate::onnx::context::norm_axis;
use crate::onnx::NodeCtx;

pub fn pad(ctx: &mut NodeCtx) -> Result<()> {
    let x = ctx.input(0)?;
    let r = ctx.fact(x).rank();
    let mode = match ctx.string("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        other => bail!("pad mode \"{other}\" is not supported"),
    };
    let (raw, value, axes) = if ctx.opset >= 11 {
        ctx.expect_inputs(2, 4)?;
        let pads = ctx.const_i64s(1, "pads")?;
        let value = match ctx.opt_input(2) {
            Some(_) => {
                let v = ctx.const_f32s(2, "constant_value")?;
                match v.as_slice() {
                    [] => 0.0,
                    [v] => *v,
                    _ => bail!("constant_value must be a scalar"),
                }
            }
            None => 0.0,
        };
        let axes = match ctx.opt_input(3) {
            Some(_) => Some(ctx.const_i64s(3, "axes")?),
            None => None,
        };
        (pads, value, axes)
    } else {
        ctx.expect_inputs(1, 1)?;
        let Some(p) = ctx.attr_ints("pads")? else {
            bail!("pads are required");
        };
        (p, ctx.float("value", 0.0)?, None)
    };
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&v| norm_axis(v, r)).collect::<Result<_>>()?,
        None => (0..r).collect(),
    };
    let k = axes.len();
    if (0..k).any(|j| axes[..j].contains(&axes[j])) {
        bail!("axes {axes:?} repeat an axis");
    }
    if raw.len() != 2 * k {
        bail!("pads {raw:?} should have {} entries", 2 * k);
    }
    // Full-rank [begin.., end..].
    let mut full = vec![0i64; 2 * r];
    for (j, &a) in axes.iter().enumerate() {
        full[a] = raw[j];
        full[r + a] = raw[k + j];
    }
    let mut cur = x;
    if full.iter().any(|&p| p < 0) {
        let shape = ctx.fact(x).shape;
        let parts: Vec<_> = (0..r)
            .map(|a| {
                let begin = full[a].saturating_neg().max(0);
                let end = (shape[a] as i64).saturating_sub(full[r + a].saturating_neg().max(0));
                (a, begin, end.max(begin), 1)
            })
            .collect();
        cur = emit_slice(ctx, cur, &parts)?;
    }
    let pads: Vec<usize> = full.iter().map(|&p| p.max(0) as usize).collect();
    if pads.iter().any(|&p| p > 0) {
        cur = ctx.emit1(Op::Pad(Pad { pads, mode, value }), &[cur])?;
    }
    ctx.set_output(0, cur)
}

//! Normalisations over a tensor's own values: LayerNormalization (opset 17), InstanceNormalization
//! and LpNormalization. Only LayerNormalization's first output (Y) is computed; a model that
//! reads its Mean or InvStdDev is refused.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{InstanceNorm, LayerNorm, LpNorm, Op};

use crate::onnx::context::norm_axis;
use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("LayerNormalization", layer_norm);
    reg.insert("InstanceNormalization", instance_norm);
    reg.insert("LpNormalization", lp_norm);
}

fn layer_norm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 3)?;
    if ctx.wants_output(1) || ctx.wants_output(2) {
        bail!(
            "LayerNormalization's Mean and InvStdDev outputs are not supported (only Y); \
             remove them from the node's outputs"
        );
    }
    let rank = ctx.input_fact(0)?.rank();
    let axis = norm_axis(ctx.int("axis", -1)?, rank)?;
    let epsilon = ctx.float("epsilon", 1e-5)?;
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    inputs.extend(ctx.opt_input(2));
    let y = ctx.emit1(Op::LayerNorm(LayerNorm { axis, epsilon }), &inputs)?;
    ctx.set_output(0, y)
}

fn instance_norm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 3)?;
    let epsilon = ctx.float("epsilon", 1e-5)?;
    let inputs = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    ctx.emit_outputs(Op::InstanceNorm(InstanceNorm { epsilon }), &inputs)
}

fn lp_norm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let rank = ctx.input_fact(0)?.rank();
    let axis = norm_axis(ctx.int("axis", -1)?, rank)?;
    let p = match ctx.int("p", 2)? {
        1 => 1,
        2 => 2,
        p => bail!("LpNormalization with p={p} is not supported (only 1 and 2)"),
    };
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::LpNorm(LpNorm { axis, p }), &[x])
}

//! LSTM and GRU, kept whole as one IR op each (default activations only).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Direction, Gru, Lstm, Op};
use edgefuse_runtime::ir::TensorId;

use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("LSTM", lstm);
    reg.insert("GRU", gru);
}

fn direction(ctx: &NodeCtx) -> Result<Direction> {
    Ok(match ctx.string("direction", "forward")?.as_str() {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        other => bail!("unknown direction \"{other}\""),
    })
}

/// Refuses activations other than the defaults (`defaults` per direction).
fn check_activations(ctx: &NodeCtx, defaults: &[&str], dirs: usize) -> Result<()> {
    if let Some(acts) = ctx.attr_strings("activations")? {
        let want: Vec<String> = (0..dirs)
            .flat_map(|_| defaults.iter().map(|s| s.to_lowercase()))
            .collect();
        let got: Vec<String> = acts.iter().map(|s| s.to_lowercase()).collect();
        if got != want {
            bail!("activations {acts:?} are not supported (only the defaults {defaults:?})");
        }
    }
    if ctx.has_attr("activation_alpha") || ctx.has_attr("activation_beta") {
        bail!("activation_alpha/activation_beta are not supported");
    }
    Ok(())
}

/// sequence_lens (input 4) is accepted only when constant and equal to T everywhere.
fn check_sequence_lens(ctx: &NodeCtx, batch_first: bool) -> Result<()> {
    if ctx.opt_input(4).is_none() {
        return Ok(());
    }
    let x = ctx.input_fact(0)?;
    if x.rank() != 3 {
        bail!("X must be rank 3, got {:?}", x.shape);
    }
    let t = if batch_first { x.shape[1] } else { x.shape[0] } as i64;
    let lens = ctx
        .const_i64s(4, "sequence_lens")
        .map_err(|e| anyhow::anyhow!("{e}; edgefuse supports only full-length sequences"))?;
    if lens.iter().any(|&l| l != t) {
        bail!("sequence_lens {lens:?} differ from the sequence length {t}; edgefuse supports only full-length sequences");
    }
    Ok(())
}

fn clip(ctx: &NodeCtx) -> Result<Option<f32>> {
    match ctx.attr_float("clip")? {
        Some(c) if c > 0.0 && c.is_finite() => Ok(Some(c)),
        Some(c) => bail!("clip must be positive, got {c}"),
        None => Ok(None),
    }
}

fn hidden(ctx: &NodeCtx) -> Result<usize> {
    match ctx.attr_int("hidden_size")? {
        Some(h) if h > 0 => Ok(h as usize),
        Some(h) => bail!("hidden_size must be positive, got {h}"),
        None => {
            let r = ctx.input_fact(2)?;
            match r.shape.as_slice() {
                [_, _, h] if *h > 0 => Ok(*h),
                _ => bail!(
                    "hidden_size is missing and R {:?} does not give it",
                    r.shape
                ),
            }
        }
    }
}

fn layout(ctx: &NodeCtx) -> Result<bool> {
    match ctx.int("layout", 0)? {
        0 => Ok(false),
        1 => Ok(true),
        l => bail!("layout {l} is not 0 or 1"),
    }
}

fn lstm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 8)?;
    let dir = direction(ctx)?;
    check_activations(ctx, &["Sigmoid", "Tanh", "Tanh"], dir.count())?;
    let batch_first = layout(ctx)?;
    check_sequence_lens(ctx, batch_first)?;
    let (b, h0, c0, p) = (
        ctx.opt_input(3),
        ctx.opt_input(5),
        ctx.opt_input(6),
        ctx.opt_input(7),
    );
    let op = Op::Lstm(Lstm {
        hidden: hidden(ctx)?,
        direction: dir,
        batch_first,
        has_bias: b.is_some(),
        has_h0: h0.is_some(),
        has_c0: c0.is_some(),
        has_peepholes: p.is_some(),
        clip: clip(ctx)?,
        input_forget: ctx.int("input_forget", 0)? != 0,
    });
    let mut inputs: Vec<TensorId> = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    inputs.extend([b, h0, c0, p].into_iter().flatten());
    ctx.emit_outputs(op, &inputs)
}

fn gru(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 6)?;
    let dir = direction(ctx)?;
    check_activations(ctx, &["Sigmoid", "Tanh"], dir.count())?;
    let batch_first = layout(ctx)?;
    check_sequence_lens(ctx, batch_first)?;
    let (b, h0) = (ctx.opt_input(3), ctx.opt_input(5));
    let op = Op::Gru(Gru {
        hidden: hidden(ctx)?,
        direction: dir,
        batch_first,
        has_bias: b.is_some(),
        has_h0: h0.is_some(),
        linear_before_reset: ctx.int("linear_before_reset", 0)? != 0,
        clip: clip(ctx)?,
    });
    let mut inputs: Vec<TensorId> = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    inputs.extend([b, h0].into_iter().flatten());
    ctx.emit_outputs(op, &inputs)
}

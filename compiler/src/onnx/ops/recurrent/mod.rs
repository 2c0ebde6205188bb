//! LSTM and GRU, kept whole as one IR op each (default activations only), and onnxruntime's
//! `com.microsoft` DynamicQuantizeLSTM (what `quantize_dynamic` makes of an LSTM) as `QLstm`.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Direction, Gru, Lstm, Op, QLstm};
use edgefuse_runtime::ir::TensorId;
use edgefuse_runtime::{DType, Tensor};

use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("LSTM", lstm);
    reg.insert("GRU", gru);
    reg.insert_in(
        "com.microsoft",
        "DynamicQuantizeLSTM",
        dynamic_quantize_lstm,
    );
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

/// The LSTM's attributes and its optional inputs (B, initial_h, initial_c, P), as present.
fn lstm_attrs(ctx: &NodeCtx, hidden: usize) -> Result<(Lstm, Vec<TensorId>)> {
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
    let lstm = Lstm {
        hidden,
        direction: dir,
        batch_first,
        has_bias: b.is_some(),
        has_h0: h0.is_some(),
        has_c0: c0.is_some(),
        has_peepholes: p.is_some(),
        clip: clip(ctx)?,
        input_forget: ctx.int("input_forget", 0)? != 0,
    };
    Ok((lstm, [b, h0, c0, p].into_iter().flatten().collect()))
}

fn lstm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 8)?;
    let (lstm, rest) = lstm_attrs(ctx, hidden(ctx)?)?;
    let mut inputs: Vec<TensorId> = vec![ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    inputs.extend(rest);
    ctx.emit_outputs(Op::Lstm(lstm), &inputs)
}

/// DynamicQuantizeLSTM: an LSTM whose W `[D, I, 4H]` and R `[D, H, 4H]` are i8 constants with
/// scales per direction (`[D]`) or per gate row (`[D, 4H]`) and zero points of 0, inputs 8 to
/// 11 (W_scale, W_zero_point, R_scale, R_zero_point); X and h are quantized at run time. That
/// is `QLstm`'s arithmetic: W and R are transposed to its `[D, 4H, ·]` rows once, here.
fn dynamic_quantize_lstm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(12, 12)?;
    let (w_shape, r_shape) = (ctx.input_fact(1)?.shape, ctx.input_fact(2)?.shape);
    let ([d, i, g], [_, h, _]) = (w_shape.as_slice(), r_shape.as_slice()) else {
        bail!("W {w_shape:?} and R {r_shape:?} must be [D, I, 4H] and [D, H, 4H]");
    };
    let (d, i, h) = (*d, *i, *h);
    if h == 0 || *g != 4 * h || r_shape != [d, h, 4 * h] {
        bail!("W {w_shape:?} and R {r_shape:?} must be [D, I, 4H] and [D, H, 4H]");
    }
    if ctx
        .attr_int("hidden_size")?
        .is_some_and(|hs| hs != h as i64)
    {
        bail!("hidden_size differs from R {r_shape:?}");
    }
    let (lstm, rest) = lstm_attrs(ctx, h)?;
    if lstm.direction.count() != d {
        bail!(
            "W {w_shape:?} has {d} directions, the direction attribute {}",
            lstm.direction.count()
        );
    }
    let (w, w_scale) = rows_i8(ctx, 1, 8, 9, "W", i)?;
    let (r, r_scale) = rows_i8(ctx, 2, 10, 11, "R", h)?;
    let (w, r) = (ctx.add_const(w), ctx.add_const(r));
    let mut inputs: Vec<TensorId> = vec![ctx.input(0)?, w, r];
    inputs.extend(rest);
    let op = Op::QLstm(QLstm {
        lstm,
        w_scale,
        r_scale,
    });
    ctx.emit_outputs(op, &inputs)
}

/// The i8 constant `[D, K, 4H]` of input `at`, transposed to `[D, 4H, K]`, and one scale per
/// row (`D·4H`) from its scale (`[D]` or `[D, 4H]`, input `scale_at`) and its zero point
/// (input `zp_at`), which must be 0.
fn rows_i8(
    ctx: &NodeCtx,
    at: usize,
    scale_at: usize,
    zp_at: usize,
    what: &str,
    k: usize,
) -> Result<(Tensor, Vec<f32>)> {
    let t = ctx.require_const(at, what)?;
    if t.dtype != DType::I8 {
        bail!(
            "{what} is {}; only symmetric i8 weights are supported",
            t.dtype
        );
    }
    let (d, g) = (t.shape[0], t.shape[2]);
    let zp = ctx.require_const(zp_at, &format!("{what}_zero_point"))?;
    if zp.bytes().iter().any(|&z| z != 0) {
        bail!("{what}_zero_point is not 0; only symmetric i8 weights are supported");
    }
    let scale = ctx.const_f32s(scale_at, &format!("{what}_scale"))?;
    let rows = match scale.len() {
        n if n == d => scale
            .iter()
            .flat_map(|&s| std::iter::repeat_n(s, g))
            .collect(),
        n if n == d * g => scale,
        n => bail!("{what}_scale has {n} values; [D] = [{d}] or [D, 4H] = [{d}, {g}] expected"),
    };
    if rows.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        bail!("{what}_scale holds a value that is not finite and positive");
    }
    let src = t.bytes();
    let mut out = vec![0u8; src.len()];
    for dir in 0..d {
        for kk in 0..k {
            for row in 0..g {
                out[(dir * g + row) * k + kk] = src[(dir * k + kk) * g + row];
            }
        }
    }
    Ok((Tensor::from_bytes(DType::I8, &[d, g, k], &out)?, rows))
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

//! Ops that produce constants or aliases rather than IR nodes: Constant, Shape, Size,
//! ConstantOfShape, Range, Identity, Dropout.

use anyhow::{bail, Result};
use edgefuse_runtime::{DType, Tensor};

use crate::onnx::context::to_usizes;
use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("Constant", constant);
    reg.insert("Shape", shape);
    reg.insert("Size", size);
    reg.insert("ConstantOfShape", constant_of_shape);
    reg.insert("Range", range);
    reg.insert("Identity", identity);
    reg.insert("Dropout", dropout);
}

fn constant(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(0, 0)?;
    let t = if let Some(t) = ctx.attr_tensor("value")? {
        t
    } else if let Some(v) = ctx.attr_float("value_float")? {
        Tensor::scalar(v)
    } else if let Some(v) = ctx.attr_int("value_int")? {
        Tensor::scalar(v)
    } else if let Some(v) = ctx.attr_floats("value_floats")? {
        Tensor::from_vec(&[v.len()], v)?
    } else if let Some(v) = ctx.attr_ints("value_ints")? {
        Tensor::from_vec(&[v.len()], v)?
    } else if ctx.has_attr("sparse_value") {
        bail!("sparse constants are not supported");
    } else if ctx.has_attr("value_string") || ctx.has_attr("value_strings") {
        bail!("string constants are not supported");
    } else {
        bail!("has no value attribute");
    };
    let id = ctx.add_const(t);
    ctx.set_output(0, id)
}

fn shape(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let shape = ctx.input_fact(0)?.shape;
    let r = shape.len() as i64;
    let clampi = |v: i64| -> usize { (if v < 0 { v + r } else { v }).clamp(0, r) as usize };
    let start = clampi(ctx.int("start", 0)?);
    let end = clampi(ctx.int("end", r)?);
    let dims: Vec<i64> = shape[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    let id = ctx.add_const(Tensor::from_vec(&[dims.len()], dims)?);
    ctx.set_output(0, id)
}

fn size(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let n = ctx.input_fact(0)?.len() as i64;
    let id = ctx.add_const(Tensor::scalar(n));
    ctx.set_output(0, id)
}

fn constant_of_shape(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let dims = ctx.const_i64s(0, "shape")?;
    let shape = to_usizes(&dims, "the shape")?;
    let value = match ctx.attr_tensor("value")? {
        Some(v) => v,
        None => Tensor::scalar(0f32),
    };
    if value.len() != 1 {
        bail!("value must hold one element, has {}", value.len());
    }
    let n: usize = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(usize::MAX);
    if n > (1 << 30) {
        bail!("shape {shape:?} is too large");
    }
    let elem = value.bytes().to_vec();
    let bytes: Vec<u8> = elem.iter().copied().cycle().take(n * elem.len()).collect();
    let t = Tensor::from_bytes(value.dtype, &shape, &bytes)?;
    let id = ctx.add_const(t);
    ctx.set_output(0, id)
}

fn range(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 3)?;
    let dtype = ctx.input_fact(0)?.dtype;
    let scalar = |ctx: &NodeCtx, i: usize, what: &str| -> Result<f64> {
        let t = ctx.require_const(i, what)?;
        if t.len() != 1 {
            bail!("Range {what} must be a scalar");
        }
        Ok(match t.dtype {
            DType::F32 | DType::F16 => t.to_f32_vec()?[0] as f64,
            _ => t.to_i64_vec()?[0] as f64,
        })
    };
    let (start, limit, delta) = (
        scalar(ctx, 0, "start")?,
        scalar(ctx, 1, "limit")?,
        scalar(ctx, 2, "delta")?,
    );
    if !(start.is_finite() && limit.is_finite() && delta.is_finite()) {
        bail!("Range start {start}, limit {limit} and delta {delta} must be finite");
    }
    if delta == 0.0 {
        bail!("Range delta is zero");
    }
    let n = ((limit - start) / delta).ceil().max(0.0);
    if n > (1u64 << 30) as f64 {
        bail!("Range would produce {n} elements");
    }
    let n = n as usize;
    let t = match dtype {
        DType::F32 => Tensor::from_vec(
            &[n],
            (0..n)
                .map(|i| (start + i as f64 * delta) as f32)
                .collect::<Vec<_>>(),
        )?,
        DType::I64 => Tensor::from_vec(
            &[n],
            (0..n)
                .map(|i| (start + i as f64 * delta) as i64)
                .collect::<Vec<_>>(),
        )?,
        DType::I32 => Tensor::from_vec(
            &[n],
            (0..n)
                .map(|i| (start + i as f64 * delta) as i32)
                .collect::<Vec<_>>(),
        )?,
        other => bail!("Range of {other} is not supported"),
    };
    let id = ctx.add_const(t);
    ctx.set_output(0, id)
}

fn identity(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    ctx.set_output(0, x)
}

/// Inference mode: the output is the input; the mask, if requested, is all true.
fn dropout(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 3)?;
    if let Some(t) = ctx.input_const(2) {
        if t.to_i64_vec()?.iter().any(|&v| v != 0) {
            bail!("Dropout in training mode is not supported");
        }
    } else if ctx.opt_input(2).is_some() {
        bail!("Dropout's training_mode input must be a constant");
    }
    let x = ctx.input(0)?;
    ctx.set_output(0, x)?;
    if ctx.wants_output(1) {
        let shape = ctx.fact(x).shape;
        let n: usize = shape.iter().product();
        let mask = Tensor::from_bytes(DType::Bool, &shape, &vec![1u8; n])?;
        let id = ctx.add_const(mask);
        ctx.set_output(1, id)?;
    }
    Ok(())
}

//! QuantizeLinear / DequantizeLinear: per tensor, or per channel when the scale is 1-D with more
//! than one element; the dynamic-quantization ops in `integer.rs`.

mod integer;

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{DequantizeLinear, Op, QuantizeLinear};
use edgefuse_runtime::DType;

use crate::onnx::context::norm_axis;
use crate::onnx::{dtype_from_onnx, NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("QuantizeLinear", quantize);
    reg.insert("DequantizeLinear", dequantize);
    reg.insert("DynamicQuantizeLinear", integer::dynamic_quantize_linear);
    reg.insert("MatMulInteger", integer::matmul_integer);
    reg.insert("ConvInteger", integer::conv_integer);
    reg.insert_in(
        "com.microsoft",
        "DynamicQuantizeMatMul",
        integer::dynamic_quantize_matmul,
    );
}

/// Per-channel axis, or None for per-tensor parameters; also checks the zero point's shape.
fn axis(ctx: &NodeCtx) -> Result<Option<usize>> {
    if ctx.int("block_size", 0)? != 0 {
        bail!("blocked quantization (block_size) is not supported");
    }
    let x = ctx.input_fact(0)?;
    let scale = ctx.input_fact(1)?;
    if let Some(zp) = ctx.opt_input(2) {
        if ctx.fact(zp).shape.iter().product::<usize>() != scale.len() {
            bail!(
                "zero point {:?} does not match scale {:?}",
                ctx.fact(zp).shape,
                scale.shape
            );
        }
    }
    if scale.len() <= 1 {
        if scale.is_empty() {
            bail!("scale is empty");
        }
        return Ok(None);
    }
    if scale.rank() != 1 {
        bail!("scale {:?} must be a scalar or 1-D", scale.shape);
    }
    Ok(Some(norm_axis(ctx.int("axis", 1)?, x.rank())?))
}

fn quantize(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 3)?;
    let axis = axis(ctx)?;
    let zp = ctx.opt_input(2);
    let to = match (ctx.int("output_dtype", 0)?, zp) {
        (0, Some(z)) => ctx.fact(z).dtype,
        (0, None) => DType::U8,
        (t, _) => dtype_from_onnx(i32::try_from(t).unwrap_or(-1))?,
    };
    if !matches!(to, DType::U8 | DType::I8) {
        bail!("quantizing to {to} is not supported (u8 and i8 are)");
    }
    if let Some(z) = zp {
        if ctx.fact(z).dtype != to {
            bail!(
                "zero point type {} differs from output_dtype {to}",
                ctx.fact(z).dtype
            );
        }
    }
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    inputs.extend(zp);
    ctx.emit_outputs(Op::QuantizeLinear(QuantizeLinear { axis, to }), &inputs)
}

fn dequantize(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 3)?;
    let axis = axis(ctx)?;
    let zp = ctx.opt_input(2);
    if let Some(z) = zp {
        if ctx.fact(z).dtype != ctx.input_fact(0)?.dtype {
            bail!(
                "zero point type {} differs from the input's {}",
                ctx.fact(z).dtype,
                ctx.input_fact(0)?.dtype
            );
        }
    }
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    inputs.extend(zp);
    // Quantized weights (u8/i8, rank ≥ 2) and biases (i32, rank 1) stay quantized: the int8
    // rewrite rules read their scales, and `fold_constant_dequantize` folds what they leave.
    // Scalars fold at once (importers such as Pad's need their values).
    let f = ctx.fact(inputs[0]);
    let weight_like = match f.dtype {
        DType::U8 | DType::I8 => f.rank() >= 2,
        DType::I32 => f.rank() == 1,
        _ => false,
    };
    if ctx.is_const(inputs[0]) && weight_like {
        return ctx.emit_outputs_unfolded(Op::DequantizeLinear(DequantizeLinear { axis }), &inputs);
    }
    ctx.emit_outputs(Op::DequantizeLinear(DequantizeLinear { axis }), &inputs)
}

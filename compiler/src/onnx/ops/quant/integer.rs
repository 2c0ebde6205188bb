//! Dynamic quantization as onnxruntime's `quantize_dynamic` writes it: DynamicQuantizeLinear
//! (an op of its own), and MatMulInteger / ConvInteger as the float op between
//! DequantizeLinear at scale 1 (the integers minus their zero points, exact in f32) and a Cast
//! to i32. Constant weights keep their DequantizeLinear as a node (u8/i8 in the graph), so the
//! rule `fold_dynamic_matmul` (`passes/qdynamic.rs`) can make `quantize_dynamic`'s MatMul chain
//! — DynamicQuantizeLinear → MatMulInteger → Cast → Mul(sx·sw) — one `DynamicQuantizeMatMul`,
//! exact i32 products on the int8 kernels with the weights stored as bytes. What it does not
//! take stays the float product, folded back to f32 weights by `fold_constant_dequantize`:
//! exact while every partial sum stays within 2^24 (K ≤ 258 for u8 × u8 at full range); past
//! that it carries f32 accumulation error, a relative 2^-24 per addition at most — far below
//! the 8-bit quantization's own, but not onnxruntime's exact i32. onnxruntime's own fusion of
//! that chain, `com.microsoft` DynamicQuantizeMatMul, imports as the op directly (as the float
//! ops where a weight scale is not finite and positive, which the op does not take).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{
    Binary, BinaryOp, Cast, DequantizeLinear, DynamicQuantizeLinear, DynamicQuantizeMatMul, MatMul,
    Op,
};
use edgefuse_runtime::ir::TensorId;
use edgefuse_runtime::{DType, Tensor};

use crate::onnx::ops::nn::conv::conv_op;
use crate::onnx::NodeCtx;

pub fn dynamic_quantize_linear(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::DynamicQuantizeLinear(DynamicQuantizeLinear {}), &[x])
}

/// Input `at` (u8 or i8) minus its zero point (input `zp_at`: one value, or one per index of
/// `axis` where one is given), as f32.
fn integers(ctx: &mut NodeCtx, at: usize, zp_at: usize, axis: Option<usize>) -> Result<TensorId> {
    let x = ctx.input(at)?;
    let f = ctx.fact(x);
    if !matches!(f.dtype, DType::U8 | DType::I8) {
        bail!("input {at} is {}; u8 or i8 expected", f.dtype);
    }
    let zp = ctx.opt_input(zp_at);
    let n = zp.map_or(1, |z| ctx.fact(z).len());
    if let Some(z) = zp {
        let zf = ctx.fact(z);
        if zf.dtype != f.dtype {
            bail!("zero point {zp_at} is {}, its input {}", zf.dtype, f.dtype);
        }
        match axis {
            _ if n == 1 => {}
            None => bail!(
                "zero point {zp_at} has {n} values; one is supported for input {at} (per-row zero points are not)"
            ),
            Some(a) if zf.rank() != 1 || f.rank() < 2 || f.shape[a] != n => bail!(
                "zero point {zp_at} {:?} is neither one value nor one per index of axis {a} of {:?}",
                zf.shape,
                f.shape
            ),
            Some(_) => {}
        }
    }
    let (ones, axis) = match n {
        1 => (Tensor::scalar(1.0f32), None),
        n => (Tensor::from_vec(&[n], vec![1.0f32; n])?, axis),
    };
    let ones = ctx.add_const(ones);
    let mut inputs = vec![x, ones];
    inputs.extend(zp);
    let op = Op::DequantizeLinear(DequantizeLinear { axis });
    // Constant weights stay quantized, as DequantizeLinear's importer keeps them: the rules
    // read them (`fold_dynamic_matmul`), and `fold_constant_dequantize` folds what they leave.
    if ctx.is_const(x) && f.rank() >= 2 {
        let out = ctx.emit_unfolded(op, &inputs)?;
        return match out.as_slice() {
            [one] => Ok(*one),
            _ => bail!("internal: DequantizeLinear gave {} outputs", out.len()),
        };
    }
    ctx.emit1(op, &inputs)
}

fn to_i32(ctx: &mut NodeCtx, y: TensorId) -> Result<()> {
    let y = ctx.emit1(Op::Cast(Cast { to: DType::I32 }), &[y])?;
    ctx.set_output(0, y)
}

/// MatMulInteger: A's zero point one value (onnxruntime's quantizer writes one), B's one or
/// one per column.
pub fn matmul_integer(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 4)?;
    let (ra, rb) = (ctx.input_fact(0)?.rank(), ctx.input_fact(1)?.rank());
    if ra < 1 || rb < 1 {
        bail!("A and B must have at least one dimension");
    }
    let a = integers(ctx, 0, 2, None)?;
    let b = integers(ctx, 1, 3, Some(rb - 1))?;
    let y = ctx.emit1(Op::MatMul(MatMul {}), &[a, b])?;
    to_i32(ctx, y)
}

/// ConvInteger: x's zero point one value, w's one or one per output channel.
pub fn conv_integer(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 4)?;
    let op = conv_op(ctx, &ctx.input_fact(0)?, &ctx.input_fact(1)?, false)?;
    let x = integers(ctx, 0, 2, None)?;
    let w = integers(ctx, 1, 3, Some(0))?;
    let y = ctx.emit1(op, &[x, w])?;
    to_i32(ctx, y)
}

/// `com.microsoft` DynamicQuantizeMatMul (A, B, b_scale, b_zero_point?, bias?): B a 2-D u8/i8
/// constant, its scale and zero point one value or one per column, the bias `[N]`, all
/// constants.
pub fn dynamic_quantize_matmul(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 5)?;
    let a = ctx.input(0)?;
    let (af, bf) = (ctx.input_fact(0)?, ctx.input_fact(1)?);
    if af.dtype != DType::F32 || !matches!(bf.dtype, DType::U8 | DType::I8) || bf.rank() != 2 {
        bail!(
            "A must be f32 and B a 2-D u8/i8 matrix; got {} {:?} and {} {:?}",
            af.dtype,
            af.shape,
            bf.dtype,
            bf.shape
        );
    }
    let n = bf.shape[1];
    let b = ctx.input(1)?;
    let constant = |i: usize, what: &str| -> Result<Option<Tensor>> {
        match ctx.opt_input(i) {
            None => Ok(None),
            Some(_) => match ctx.input_const(i) {
                Some(t) => Ok(Some(t.clone())),
                None => bail!("{what} (input {i}) must be a constant"),
            },
        }
    };
    if !ctx.is_const(b) {
        bail!("B (input 1) must be a constant");
    }
    let per_column = |len: usize, what: &str| -> Result<()> {
        if len == 1 || len == n {
            Ok(())
        } else {
            bail!("{what} has {len} values; one or one per column ({n}) is supported")
        }
    };
    let scale = constant(2, "b_scale")?
        .ok_or_else(|| anyhow::anyhow!("b_scale (input 2) is missing"))?
        .to_f32_vec()?;
    per_column(scale.len(), "b_scale")?;
    let zero_point: Vec<i32> = match constant(3, "b_zero_point")? {
        Some(z) if z.dtype != bf.dtype => bail!("b_zero_point is {}, B {}", z.dtype, bf.dtype),
        Some(z) => z.to_i64_vec()?.into_iter().map(|v| v as i32).collect(),
        None => vec![0; scale.len()],
    };
    per_column(zero_point.len(), "b_zero_point")?;
    // One scale and one zero point each, or both per column.
    let at = |len: usize, c: usize| if len == 1 { 0 } else { c };
    let (w_scale, w_zero_point) = if scale.len() == zero_point.len() {
        (scale, zero_point)
    } else {
        (
            (0..n).map(|c| scale[at(scale.len(), c)]).collect(),
            (0..n)
                .map(|c| zero_point[at(zero_point.len(), c)])
                .collect(),
        )
    };
    let mut inputs = vec![a, b];
    if let Some(bias) = constant(4, "bias")? {
        if bias.dtype != DType::F32 || bias.shape.iter().product::<usize>() != n {
            bail!(
                "bias {} {:?} must be f32 with {n} values",
                bias.dtype,
                bias.shape
            );
        }
        let values = bias.to_f32_vec()?;
        inputs.push(ctx.add_const(Tensor::from_vec(&[n], values)?));
    }
    if w_scale.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        // The op takes finite positive scales; onnxruntime takes any.
        let scale = ctx.add_const(Tensor::from_vec(&[w_scale.len()], w_scale)?);
        return dynamic_quantize_matmul_float(ctx, scale, inputs.get(2).copied());
    }
    let op = Op::DynamicQuantizeMatMul(DynamicQuantizeMatMul {
        w_scale,
        w_zero_point,
        has_bias: inputs.len() == 3,
    });
    ctx.emit_outputs(op, &inputs)
}

/// `com.microsoft` DynamicQuantizeMatMul as float ops, for scales the op does not take (zero,
/// negative, not finite): DynamicQuantizeLinear of A, both sides' integers minus their zero
/// points as f32, their MatMul, times `sx·b_scale`, plus the bias — onnxruntime's rounding
/// steps, with the product exact while its partial sums stay within 2^24 (as MatMulInteger's
/// float path, see the module's notes).
/// `scale` holds b_scale (`[1]` or `[N]`), `bias` the bias as `[N]`.
fn dynamic_quantize_matmul_float(
    ctx: &mut NodeCtx,
    scale: TensorId,
    bias: Option<TensorId>,
) -> Result<()> {
    let a = ctx.input(0)?;
    let q = ctx.emit(Op::DynamicQuantizeLinear(DynamicQuantizeLinear {}), &[a])?;
    let [xq, sx, zx] = q[..] else {
        bail!("internal: DynamicQuantizeLinear gave {} outputs", q.len());
    };
    let one = ctx.add_const(Tensor::scalar(1.0f32));
    let dq = Op::DequantizeLinear(DequantizeLinear { axis: None });
    let xi = ctx.emit1(dq, &[xq, one, zx])?;
    let wi = integers(ctx, 1, 3, Some(1))?;
    let prod = ctx.emit1(Op::MatMul(MatMul {}), &[xi, wi])?;
    let mul = Op::Binary(Binary { op: BinaryOp::Mul });
    let s = ctx.emit1(mul.clone(), &[sx, scale])?;
    let mut y = ctx.emit1(mul, &[prod, s])?;
    if let Some(bias) = bias {
        y = ctx.emit1(Op::Binary(Binary { op: BinaryOp::Add }), &[y, bias])?;
    }
    ctx.set_output(0, y)
}

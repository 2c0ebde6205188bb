//! Unary functions and activations, parameters resolved from attributes (or, for Clip from
//! opset 11, from constant inputs).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Binary, BinaryOp, Op, Unary, UnaryOp};
use edgefuse_runtime::ir::TensorId;
use edgefuse_runtime::{DType, Tensor};

use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("Relu", |c| plain(c, UnaryOp::Relu));
    reg.insert("Sigmoid", |c| plain(c, UnaryOp::Sigmoid));
    reg.insert("Tanh", |c| plain(c, UnaryOp::Tanh));
    reg.insert("Sqrt", |c| plain(c, UnaryOp::Sqrt));
    reg.insert("Exp", |c| plain(c, UnaryOp::Exp));
    reg.insert("Log", |c| plain(c, UnaryOp::Log));
    reg.insert("Neg", |c| plain(c, UnaryOp::Neg));
    reg.insert("Abs", |c| plain(c, UnaryOp::Abs));
    reg.insert("Reciprocal", |c| plain(c, UnaryOp::Reciprocal));
    reg.insert("Floor", |c| plain(c, UnaryOp::Floor));
    reg.insert("Ceil", |c| plain(c, UnaryOp::Ceil));
    reg.insert("Round", |c| plain(c, UnaryOp::Round));
    reg.insert("Erf", |c| plain(c, UnaryOp::Erf));
    reg.insert("Softplus", |c| plain(c, UnaryOp::Softplus));
    reg.insert("Mish", |c| plain(c, UnaryOp::Mish));
    reg.insert("HardSwish", |c| plain(c, UnaryOp::HardSwish));
    reg.insert("Not", |c| plain(c, UnaryOp::Not));
    reg.insert("Sin", |c| plain(c, UnaryOp::Sin));
    reg.insert("Cos", |c| plain(c, UnaryOp::Cos));
    reg.insert("Sign", |c| plain(c, UnaryOp::Sign));
    reg.insert("Softsign", |c| plain(c, UnaryOp::Softsign));
    reg.insert("Selu", selu);
    reg.insert("Celu", celu);
    reg.insert("ThresholdedRelu", thresholded_relu);
    reg.insert("Gelu", gelu);
    reg.insert("LeakyRelu", leaky_relu);
    reg.insert("Elu", elu);
    reg.insert("HardSigmoid", hard_sigmoid);
    reg.insert("Clip", clip);
}

fn unary(ctx: &mut NodeCtx, op: UnaryOp) -> Result<()> {
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::Unary(Unary { op }), &[x])
}

fn plain(ctx: &mut NodeCtx, op: UnaryOp) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    unary(ctx, op)
}

fn gelu(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    match ctx.string("approximate", "none")?.as_str() {
        "none" => unary(ctx, UnaryOp::Gelu),
        "tanh" => gelu_tanh(ctx),
        other => {
            bail!("Gelu with approximate=\"{other}\" is not supported (\"none\" and \"tanh\" are)")
        }
    }
}

/// Gelu's tanh approximation, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, as the element-wise
/// ops that onnxruntime's formula names, in its order.
fn gelu_tanh(ctx: &mut NodeCtx) -> Result<()> {
    let x = ctx.input(0)?;
    if ctx.fact(x).dtype != DType::F32 {
        bail!("Gelu of {} is not supported", ctx.fact(x).dtype);
    }
    let bin = |ctx: &mut NodeCtx, op: BinaryOp, a: TensorId, b: TensorId| {
        ctx.emit1(Op::Binary(Binary { op }), &[a, b])
    };
    let c = |ctx: &mut NodeCtx, v: f32| ctx.add_const(Tensor::scalar(v));
    let x2 = bin(ctx, BinaryOp::Mul, x, x)?;
    let x3 = bin(ctx, BinaryOp::Mul, x2, x)?;
    let k = c(ctx, 0.044715);
    let cubic = bin(ctx, BinaryOp::Mul, x3, k)?;
    let inner = bin(ctx, BinaryOp::Add, x, cubic)?;
    let k = c(ctx, (2.0 / std::f32::consts::PI).sqrt());
    let scaled = bin(ctx, BinaryOp::Mul, inner, k)?;
    let t = ctx.emit1(Op::Unary(Unary { op: UnaryOp::Tanh }), &[scaled])?;
    let one = c(ctx, 1.0);
    let t1 = bin(ctx, BinaryOp::Add, t, one)?;
    let half = c(ctx, 0.5);
    let hx = bin(ctx, BinaryOp::Mul, x, half)?;
    let y = bin(ctx, BinaryOp::Mul, hx, t1)?;
    ctx.set_output(0, y)
}

fn leaky_relu(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let alpha = ctx.float("alpha", 0.01)?;
    unary(ctx, UnaryOp::LeakyRelu { alpha })
}

fn elu(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let alpha = ctx.float("alpha", 1.0)?;
    unary(ctx, UnaryOp::Elu { alpha })
}

fn hard_sigmoid(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let alpha = ctx.float("alpha", 0.2)?;
    let beta = ctx.float("beta", 0.5)?;
    unary(ctx, UnaryOp::HardSigmoid { alpha, beta })
}

fn selu(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let alpha = ctx.float("alpha", 1.673_263_2)?;
    let gamma = ctx.float("gamma", 1.050_701)?;
    unary(ctx, UnaryOp::Selu { alpha, gamma })
}

fn celu(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let alpha = ctx.float("alpha", 1.0)?;
    if alpha == 0.0 {
        bail!("Celu with alpha 0");
    }
    unary(ctx, UnaryOp::Celu { alpha })
}

fn thresholded_relu(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let alpha = ctx.float("alpha", 1.0)?;
    unary(ctx, UnaryOp::ThresholdedRelu { alpha })
}

/// Clip bounds: attributes before opset 11, optional constant scalar inputs from 11. Absent
/// bounds are ±f32::MAX (finite, so the serialized graph stays plain JSON).
fn clip(ctx: &mut NodeCtx) -> Result<()> {
    let (min, max) = if ctx.opset < 11 {
        ctx.expect_inputs(1, 1)?;
        (ctx.float("min", f32::MIN)?, ctx.float("max", f32::MAX)?)
    } else {
        ctx.expect_inputs(1, 3)?;
        let bound = |ctx: &NodeCtx, i: usize, what: &str, default: f32| -> Result<f32> {
            if ctx.opt_input(i).is_none() {
                return Ok(default);
            }
            let v = ctx.const_f32s(i, what)?;
            match v.as_slice() {
                [x] => Ok(x.clamp(f32::MIN, f32::MAX)),
                _ => bail!("Clip {what} must be a scalar, got {} values", v.len()),
            }
        };
        (
            bound(ctx, 1, "min", f32::MIN)?,
            bound(ctx, 2, "max", f32::MAX)?,
        )
    };
    unary(ctx, UnaryOp::Clip { min, max })
}

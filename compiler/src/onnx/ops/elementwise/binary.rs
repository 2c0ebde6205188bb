//! Binary ops with numpy broadcasting (arithmetic, comparisons, And/Or/Xor, PRelu); variadic Max/Min/Sum/Mean as chains; Where.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Binary, BinaryOp, Op, Unary, UnaryOp, Where};
use edgefuse_runtime::{DType, Tensor};

use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("Add", |c| binary(c, BinaryOp::Add));
    reg.insert("Sub", |c| binary(c, BinaryOp::Sub));
    reg.insert("Mul", |c| binary(c, BinaryOp::Mul));
    reg.insert("Div", |c| binary(c, BinaryOp::Div));
    reg.insert("Pow", pow);
    reg.insert("Equal", |c| binary(c, BinaryOp::Equal));
    reg.insert("Less", |c| binary(c, BinaryOp::Less));
    reg.insert("Greater", |c| binary(c, BinaryOp::Greater));
    reg.insert("And", |c| binary(c, BinaryOp::And));
    reg.insert("Or", |c| binary(c, BinaryOp::Or));
    reg.insert("Xor", |c| binary(c, BinaryOp::Xor));
    // The slope broadcasts one way, to X's shape (checked by the op's inference).
    reg.insert("PRelu", |c| binary(c, BinaryOp::PRelu));
    reg.insert("GreaterOrEqual", |c| negated(c, BinaryOp::Less));
    reg.insert("LessOrEqual", |c| negated(c, BinaryOp::Greater));
    reg.insert("Max", |c| variadic(c, BinaryOp::Max, false));
    reg.insert("Min", |c| variadic(c, BinaryOp::Min, false));
    reg.insert("Sum", |c| variadic(c, BinaryOp::Add, false));
    reg.insert("Mean", |c| variadic(c, BinaryOp::Add, true));
    reg.insert("Where", where_);
}

fn binary(ctx: &mut NodeCtx, op: BinaryOp) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let inputs = [ctx.input(0)?, ctx.input(1)?];
    ctx.emit_outputs(Op::Binary(Binary { op }), &inputs)
}

/// Pow: a float base takes any exponent type; an integer base only an integer exponent (the CPU
/// kernel computes in the base's type).
fn pow(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let (base, exp) = (ctx.input_fact(0)?.dtype, ctx.input_fact(1)?.dtype);
    let float = |d: DType| matches!(d, DType::F32 | DType::F16);
    if !float(base) && float(exp) {
        bail!("Pow of an integer base ({base}) by a float exponent ({exp}) is not supported");
    }
    binary(ctx, BinaryOp::Pow)
}

/// `a >= b` as `not(a < b)`, `a <= b` as `not(a > b)`.
fn negated(ctx: &mut NodeCtx, op: BinaryOp) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let inputs = [ctx.input(0)?, ctx.input(1)?];
    let c = ctx.emit1(Op::Binary(Binary { op }), &inputs)?;
    let out = ctx.emit1(Op::Unary(Unary { op: UnaryOp::Not }), &[c])?;
    ctx.set_output(0, out)
}

fn variadic(ctx: &mut NodeCtx, op: BinaryOp, mean: bool) -> Result<()> {
    let n = ctx.n_inputs();
    if n == 0 {
        bail!("needs at least one input");
    }
    let mut acc = ctx.input(0)?;
    for i in 1..n {
        let x = ctx.input(i)?;
        acc = ctx.emit1(Op::Binary(Binary { op }), &[acc, x])?;
    }
    if mean && n > 1 {
        if ctx.fact(acc).dtype != DType::F32 {
            bail!("Mean needs f32 inputs");
        }
        let d = ctx.add_const(Tensor::scalar(n as f32));
        acc = ctx.emit1(Op::Binary(Binary { op: BinaryOp::Div }), &[acc, d])?;
    }
    ctx.set_output(0, acc)
}

fn where_(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(3, 3)?;
    let inputs = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    ctx.emit_outputs(Op::Where(Where {}), &inputs)
}

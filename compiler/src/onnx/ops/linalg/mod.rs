//! Gemm and MatMul.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{Gemm, MatMul, Op};

use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("Gemm", gemm);
    reg.insert("MatMul", matmul);
}

fn gemm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 3)?;
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if ctx.fact(a).rank() != 2 || ctx.fact(b).rank() != 2 {
        bail!(
            "Gemm needs 2-D A and B, got {:?} and {:?}",
            ctx.fact(a).shape,
            ctx.fact(b).shape
        );
    }
    let op = Op::Gemm(Gemm {
        alpha: ctx.float("alpha", 1.0)?,
        beta: ctx.float("beta", 1.0)?,
        trans_a: ctx.int("transA", 0)? != 0,
        trans_b: ctx.int("transB", 0)? != 0,
        act: None,
    });
    let mut inputs = vec![a, b];
    inputs.extend(ctx.opt_input(2));
    ctx.emit_outputs(op, &inputs)
}

fn matmul(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 2)?;
    let inputs = [ctx.input(0)?, ctx.input(1)?];
    ctx.emit_outputs(Op::MatMul(MatMul {}), &inputs)
}

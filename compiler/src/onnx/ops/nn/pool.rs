//! MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{DequantizeLinear, GlobalPool, Op, Pool, PoolKind, QuantizeLinear};
use edgefuse_runtime::ir::TensorId;
use edgefuse_runtime::{DType, Tensor};

use super::{check_spatial_rank, window};
use crate::onnx::NodeCtx;

fn pool(ctx: &mut NodeCtx, kind: PoolKind) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    if ctx.wants_output(1) {
        bail!("the Indices output of MaxPool is not supported");
    }
    if ctx.int("storage_order", 0)? != 0 {
        bail!("storage_order=1 is not supported");
    }
    let x = ctx.input_fact(0)?;
    if x.rank() < 3 {
        bail!("input {:?} must be [N, C, ...]", x.shape);
    }
    let Some(kernel) = ctx.attr_ints("kernel_shape")? else {
        bail!("kernel_shape is required");
    };
    let kernel = crate::onnx::context::to_usizes(&kernel, "kernel_shape")?;
    let win = window(ctx, &x.shape[2..], kernel)?;
    check_spatial_rank("pooling", &win.kernel)?;
    let op = Op::Pool(Pool {
        kind,
        kernel: win.kernel,
        strides: win.strides,
        pads: win.pads,
        dilations: win.dilations,
        ceil_mode: ctx.int("ceil_mode", 0)? != 0,
        count_include_pad: ctx.int("count_include_pad", 0)? != 0,
    });
    let input = ctx.input(0)?;
    if kind == PoolKind::Max && matches!(x.dtype, DType::U8 | DType::I8) {
        return max_pool_bytes(ctx, op, input, x.dtype);
    }
    let out = ctx.emit1(op, &[input])?;
    ctx.set_output(0, out)
}

/// MaxPool over u8/i8 values (onnxruntime's QOperator graphs pool the quantized tensor): the
/// pool between DequantizeLinear and QuantizeLinear at scale 1 and zero point 0, exact, which
/// `fold_qdq_into_qpool` turns into a byte max.
fn max_pool_bytes(ctx: &mut NodeCtx, op: Op, x: TensorId, dtype: DType) -> Result<()> {
    let one = ctx.add_const(Tensor::scalar(1.0f32));
    let zero = ctx.add_const(Tensor::from_bytes(dtype, &[], &[0])?);
    let xf = ctx.emit1(
        Op::DequantizeLinear(DequantizeLinear { axis: None }),
        &[x, one, zero],
    )?;
    let yf = ctx.emit1(op, &[xf])?;
    let y = ctx.emit1(
        Op::QuantizeLinear(QuantizeLinear {
            axis: None,
            to: dtype,
        }),
        &[yf, one, zero],
    )?;
    ctx.set_output(0, y)
}

pub fn max_pool(ctx: &mut NodeCtx) -> Result<()> {
    pool(ctx, PoolKind::Max)
}

pub fn average_pool(ctx: &mut NodeCtx) -> Result<()> {
    pool(ctx, PoolKind::Avg)
}

fn global(ctx: &mut NodeCtx, kind: PoolKind) -> Result<()> {
    ctx.expect_inputs(1, 1)?;
    let x = ctx.input(0)?;
    ctx.emit_outputs(Op::GlobalPool(GlobalPool { kind }), &[x])
}

pub fn global_average_pool(ctx: &mut NodeCtx) -> Result<()> {
    global(ctx, PoolKind::Avg)
}

pub fn global_max_pool(ctx: &mut NodeCtx) -> Result<()> {
    global(ctx, PoolKind::Max)
}

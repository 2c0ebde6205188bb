//! BatchNormalization in inference mode.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{BatchNorm, Op};

use crate::onnx::NodeCtx;

pub fn batch_norm(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(5, 5)?;
    if ctx.int("training_mode", 0)? != 0 || (1..ctx.n_outputs()).any(|k| ctx.wants_output(k)) {
        bail!("training mode (running statistics outputs) is not supported");
    }
    let inputs: Vec<_> = (0..5).map(|i| ctx.input(i)).collect::<Result<_>>()?;
    let op = Op::BatchNorm(BatchNorm {
        epsilon: ctx.float("epsilon", 1e-5)?,
    });
    let out = ctx.emit1(op, &inputs)?;
    ctx.set_output(0, out)
}

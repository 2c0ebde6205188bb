//! CPU kernel for Gru: one GEMM projects every timestep's input, then one GEMM (two without
//! `linear_before_reset`) plus fused gate math per step (`edgefuse_kernels::rnn::gru`). W and R
//! are packed at build when constant.

use edgefuse_kernels::rnn::{self, RnnWeights};

use super::{optional, scratch_f32, Recurrent};
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Gru, OpInfo};
use crate::tensor::{TensorView, TensorViewMut};
use crate::{Error, Result};

struct GruKernel {
    op: Gru,
    rec: Recurrent,
}

pub fn build(op: &Gru, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    if b.outputs.len() != 2 {
        return Err(Error::invalid("GRU: the CPU kernel writes Y and Y_h"));
    }
    let rec = Recurrent::new(b, 3, op.hidden, op.direction, op.batch_first)?;
    Ok(Box::new(GruKernel {
        op: op.clone(),
        rec,
    }))
}

impl CpuKernel for GruKernel {
    fn scratch_bytes(&self) -> usize {
        4 * rnn::gru_scratch(&self.rec.dims)
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let n = rnn::gru_scratch(&self.rec.dims);
        self.rec.check("GRU", inputs, outputs, scratch, n)?;
        let op = &self.op;
        let mut k = 3;
        let bias = optional(inputs, op.has_bias, &mut k);
        let h0 = optional(inputs, op.has_h0, &mut k);
        let (w_t, r_t) = self.rec.weights(inputs);
        let weights = RnnWeights {
            projected: false,
            w_t,
            r_t,
            r_packed: None,
            w_packed: self.rec.w_packed(),
            bias,
            h0,
            clip: op.clip,
        };
        let [y, y_h] = outputs else {
            return Err(Error::invalid("GRU: expected 2 outputs"));
        };
        rnn::gru(
            &self.rec.dims,
            &weights,
            op.linear_before_reset,
            inputs[0].typed::<f32>(),
            y.typed::<f32>(),
            y_h.typed::<f32>(),
            scratch_f32(scratch, n)?,
            ctx.threads,
        );
        Ok(())
    }
}

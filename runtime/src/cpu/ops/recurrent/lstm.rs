//! CPU kernel for Lstm: one GEMM projects every timestep's input, then one GEMM plus fused gate
//! math per step (`edgefuse_kernels::rnn::lstm`). W and R are packed at build when constant.

use edgefuse_kernels::rnn::{self, LstmExtras, RnnWeights};

use super::{optional, scratch_f32, Recurrent};
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Lstm, OpInfo};
use crate::tensor::{TensorView, TensorViewMut};
use crate::{Error, Result};

struct LstmKernel {
    op: Lstm,
    rec: Recurrent,
}

pub fn build(op: &Lstm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    if b.outputs.len() != 3 {
        return Err(Error::invalid("LSTM: the CPU kernel writes Y, Y_h and Y_c"));
    }
    let rec = Recurrent::new(b, 4, op.hidden, op.direction, op.batch_first)?;
    Ok(Box::new(LstmKernel {
        op: op.clone(),
        rec,
    }))
}

impl CpuKernel for LstmKernel {
    fn scratch_bytes(&self) -> usize {
        4 * rnn::lstm_scratch(&self.rec.dims)
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let n = rnn::lstm_scratch(&self.rec.dims);
        self.rec.check("LSTM", inputs, outputs, scratch, n)?;
        let op = &self.op;
        let mut k = 3;
        let bias = optional(inputs, op.has_bias, &mut k);
        let h0 = optional(inputs, op.has_h0, &mut k);
        let c0 = optional(inputs, op.has_c0, &mut k);
        let peepholes = optional(inputs, op.has_peepholes, &mut k);
        let (w_t, r_t) = self.rec.weights(inputs);
        let weights = RnnWeights {
            projected: self.rec.projected(),
            w_t,
            r_t,
            w_packed: self.rec.w_packed(),
            r_packed: self.rec.r_packed(),
            bias,
            h0,
            clip: op.clip,
        };
        let extras = LstmExtras {
            c0,
            peepholes,
            input_forget: op.input_forget,
        };
        let [y, y_h, y_c] = outputs else {
            return Err(Error::invalid("LSTM: expected 3 outputs"));
        };
        rnn::lstm(
            &self.rec.dims,
            &weights,
            &extras,
            inputs[0].typed::<f32>(),
            y.typed::<f32>(),
            y_h.typed::<f32>(),
            y_c.typed::<f32>(),
            scratch_f32(scratch, n)?,
            ctx.threads,
        );
        Ok(())
    }
}

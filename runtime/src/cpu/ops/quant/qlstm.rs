//! CPU kernel for QLstm: the LSTM of `edgefuse_kernels::rnn::lstm_with` with its two products in
//! int8 (dynamic quantization of X and h, `qrnn`); W is packed and R widened at build.

use edgefuse_kernels::rnn::{self, LstmExtras, RnnParams};

use super::qrnn::QRecurrent;
use crate::cpu::ops::recurrent::optional;
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{OpInfo, QLstm};
use crate::tensor::{TensorView, TensorViewMut};
use crate::{Error, Result};

struct QLstmKernel {
    op: QLstm,
    rec: QRecurrent,
}

pub fn build(op: &QLstm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    if b.outputs.len() != 3 {
        return Err(Error::invalid(
            "QLstm: the CPU kernel writes Y, Y_h and Y_c",
        ));
    }
    let l = &op.lstm;
    let rec = QRecurrent::new(
        "QLstm",
        b,
        4,
        l.hidden,
        l.direction,
        l.batch_first,
        &op.w_scale,
        &op.r_scale,
        rnn::lstm_scratch,
    )?;
    Ok(Box::new(QLstmKernel {
        op: op.clone(),
        rec,
    }))
}

impl CpuKernel for QLstmKernel {
    fn scratch_bytes(&self) -> usize {
        self.rec.scratch_bytes()
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (floats, mut products) = self.rec.prepare("QLstm", inputs, outputs, scratch)?;
        let l = &self.op.lstm;
        let mut k = 3;
        let bias = optional(inputs, l.has_bias, &mut k);
        let h0 = optional(inputs, l.has_h0, &mut k);
        let c0 = optional(inputs, l.has_c0, &mut k);
        let peepholes = optional(inputs, l.has_peepholes, &mut k);
        let params = RnnParams {
            bias,
            h0,
            clip: l.clip,
        };
        let extras = LstmExtras {
            c0,
            peepholes,
            input_forget: l.input_forget,
        };
        let [y, y_h, y_c] = outputs else {
            return Err(Error::invalid("QLstm: expected 3 outputs"));
        };
        rnn::lstm_with(
            &self.rec.dims,
            &params,
            &extras,
            &mut products,
            inputs[0].typed::<f32>(),
            y.typed::<f32>(),
            y_h.typed::<f32>(),
            y_c.typed::<f32>(),
            floats,
        );
        Ok(())
    }
}

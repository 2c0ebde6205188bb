//! CPU kernel for QGru: the GRU of `edgefuse_kernels::rnn::gru_with` with its products in int8
//! (dynamic quantization of X, h and r ⊙ h, `qrnn`); W is packed and R widened at build.

use edgefuse_kernels::rnn::{self, RnnParams};

use super::qrnn::QRecurrent;
use crate::cpu::ops::recurrent::optional;
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{OpInfo, QGru};
use crate::tensor::{TensorView, TensorViewMut};
use crate::{Error, Result};

struct QGruKernel {
    op: QGru,
    rec: QRecurrent,
}

pub fn build(op: &QGru, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    if b.outputs.len() != 2 {
        return Err(Error::invalid("QGru: the CPU kernel writes Y and Y_h"));
    }
    let g = &op.gru;
    let rec = QRecurrent::new(
        "QGru",
        b,
        3,
        g.hidden,
        g.direction,
        g.batch_first,
        &op.w_scale,
        &op.r_scale,
        rnn::gru_scratch,
    )?;
    Ok(Box::new(QGruKernel {
        op: op.clone(),
        rec,
    }))
}

impl CpuKernel for QGruKernel {
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
        let (floats, mut products) = self.rec.prepare("QGru", inputs, outputs, scratch)?;
        let g = &self.op.gru;
        let mut k = 3;
        let bias = optional(inputs, g.has_bias, &mut k);
        let h0 = optional(inputs, g.has_h0, &mut k);
        let params = RnnParams {
            bias,
            h0,
            clip: g.clip,
        };
        let [y, y_h] = outputs else {
            return Err(Error::invalid("QGru: expected 2 outputs"));
        };
        rnn::gru_with(
            &self.rec.dims,
            &params,
            g.linear_before_reset,
            &mut products,
            inputs[0].typed::<f32>(),
            y.typed::<f32>(),
            y_h.typed::<f32>(),
            floats,
        );
        Ok(())
    }
}

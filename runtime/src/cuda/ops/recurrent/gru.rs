//! GRU with `linear_before_reset = 1` (PyTorch's form; gate order z, r, h): one projection
//! GEMM, then per step and direction a recurrent GEMM and `recurrent_gru_gates_*`. The other
//! form needs r before the recurrent product and stays on the CPU.

use super::{optional, supports as rnn_supports, Rnn};
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Gru;
use crate::ir::Fact;
use crate::Result;

pub fn supports(op: &Gru, inputs: &[Fact], outputs: &[Fact]) -> Support {
    if !op.linear_before_reset {
        return Err("GRU with linear_before_reset = 0".into());
    }
    if outputs.len() != 2 {
        return Err("GRU without a Y_h output".into());
    }
    if op.batch_first && op.direction.count() == 2 {
        // Its states are [B, D, H]; the kernels address [D, B, H].
        return Err("batch-first bidirectional GRU".into());
    }
    rnn_supports(inputs, outputs)
}

struct GruKernel {
    op: Gru,
    rnn: Rnn,
}

pub fn build(op: &Gru, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let rnn = Rnn::new(b, 3, op.hidden, op.direction, op.batch_first, "gru", false)?;
    Ok(Box::new(GruKernel {
        op: op.clone(),
        rnn,
    }))
}

impl CudaKernel for GruKernel {
    fn scratch_bytes(&self) -> usize {
        self.rnn.scratch_bytes()
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (op, r) = (&self.op, &self.rnn);
        let (x, w, rw) = (io.inputs[0], io.inputs[1], io.inputs[2]);
        let mut k = 3;
        let bias = optional(io.inputs, op.has_bias, &mut k);
        let h0 = optional(io.inputs, op.has_h0, &mut k);
        let (y, yh) = (io.outputs[0], io.outputs[1]);
        let (xw, hr) = r.scratch(io.scratch);
        let xw = r.project(dev, x, w, xw)?;
        r.init_state(dev, yh, (h0 != 0).then_some(h0))?;
        let el = r.dtype.size() as u64;
        let (batch, hidden) = (r.batch as i64, r.hidden as i64);
        let clip = op.clip.unwrap_or(0.0);
        for d in 0..r.dirs {
            let h = r.state(yh, d);
            let bias_d = if bias == 0 {
                0
            } else {
                bias + (d * 6 * r.hidden) as u64 * el
            };
            for s in 0..r.seq {
                let t = r.time(s, d);
                r.recurrent(dev, h, rw, d, hr)?;
                let (xw_t, xw_stride) = r.xw_rows(xw, t, d);
                let (y_t, y_stride) = r.y_rows(y, t, d);
                // SAFETY: (const T* xw, i64 xw_stride, const T* hr, const T* bias, T* h, T* y,
                // i64 y_stride, i64 batch, i64 hidden, float clip); addresses from the facts.
                unsafe {
                    dev.launch(
                        &r.gate,
                        r.batch * r.hidden,
                        &mut [
                            arg(&xw_t),
                            arg(&xw_stride),
                            arg(&hr),
                            arg(&bias_d),
                            arg(&h),
                            arg(&y_t),
                            arg(&y_stride),
                            arg(&batch),
                            arg(&hidden),
                            arg(&clip),
                        ],
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{Direction, Gru};
    use crate::ir::Op;

    #[test]
    fn gru_matches_the_cpu() {
        let op = Op::Gru(Gru {
            hidden: 8,
            direction: Direction::Bidirectional,
            batch_first: false,
            has_bias: true,
            has_h0: false,
            linear_before_reset: true,
            clip: None,
        });
        let inputs = [
            values(&[5, 2, 6], 1),
            values(&[2, 24, 6], 2),
            values(&[2, 24, 8], 3),
            values(&[2, 48], 4),
        ];
        check(&op, &inputs, &[false, true, true, true], 1e-5);
    }
}

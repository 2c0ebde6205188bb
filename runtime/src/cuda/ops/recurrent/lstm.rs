//! LSTM (ONNX gate order i, o, f, c; peepholes, clip and input-forget coupling supported):
//! one projection GEMM, then per step and direction a recurrent GEMM and
//! `recurrent_lstm_gates_*`. h and c live in Y_h and Y_c throughout.

use super::{optional, supports as rnn_supports, Rnn};
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Lstm;
use crate::ir::Fact;
use crate::Result;

pub fn supports(_op: &Lstm, inputs: &[Fact], outputs: &[Fact]) -> Support {
    if outputs.len() != 3 {
        return Err("LSTM without Y_h and Y_c outputs".into());
    }
    rnn_supports(inputs, outputs)
}

struct LstmKernel {
    op: Lstm,
    rnn: Rnn,
}

pub fn build(op: &Lstm, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let rnn = Rnn::new(b, 4, op.hidden, op.direction, op.batch_first, "lstm")?;
    Ok(Box::new(LstmKernel {
        op: op.clone(),
        rnn,
    }))
}

impl CudaKernel for LstmKernel {
    fn scratch_bytes(&self) -> usize {
        self.rnn.scratch_bytes()
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (op, r) = (&self.op, &self.rnn);
        let (x, w, rw) = (io.inputs[0], io.inputs[1], io.inputs[2]);
        let mut k = 3;
        let bias = optional(io.inputs, op.has_bias, &mut k);
        let h0 = optional(io.inputs, op.has_h0, &mut k);
        let c0 = optional(io.inputs, op.has_c0, &mut k);
        let peep = optional(io.inputs, op.has_peepholes, &mut k);
        let (y, yh, yc) = (io.outputs[0], io.outputs[1], io.outputs[2]);
        let (xw, hr) = r.scratch(io.scratch);
        r.project(dev, x, w, xw)?;
        r.init_state(dev, yh, (h0 != 0).then_some(h0))?;
        r.init_state(dev, yc, (c0 != 0).then_some(c0))?;
        let el = r.dtype.size() as u64;
        let (batch, hidden) = (r.batch as i64, r.hidden as i64);
        let clip = op.clip.unwrap_or(0.0);
        let input_forget = op.input_forget as i32;
        for d in 0..r.dirs {
            let (h, c) = (r.state(yh, d), r.state(yc, d));
            let bias_d = if bias == 0 {
                0
            } else {
                bias + (d * 8 * r.hidden) as u64 * el
            };
            let peep_d = if peep == 0 {
                0
            } else {
                peep + (d * 3 * r.hidden) as u64 * el
            };
            for s in 0..r.seq {
                let t = r.time(s, d);
                r.recurrent(dev, h, rw, d, hr)?;
                let (xw_t, xw_stride) = r.xw_rows(xw, t, d);
                let (y_t, y_stride) = r.y_rows(y, t, d);
                // SAFETY: (const T* xw, i64 xw_stride, const T* hr, const T* bias,
                // const T* peep, T* h, T* c, T* y, i64 y_stride, i64 batch, i64 hidden,
                // float clip, int input_forget); addresses derived from the checked facts.
                unsafe {
                    dev.launch(
                        &r.gate,
                        r.batch * r.hidden,
                        &mut [
                            arg(&xw_t),
                            arg(&xw_stride),
                            arg(&hr),
                            arg(&bias_d),
                            arg(&peep_d),
                            arg(&h),
                            arg(&c),
                            arg(&y_t),
                            arg(&y_stride),
                            arg(&batch),
                            arg(&hidden),
                            arg(&clip),
                            arg(&input_forget),
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
    use crate::ir::ops::{Direction, Lstm};
    use crate::ir::Op;

    #[test]
    fn lstm_matches_the_cpu() {
        for direction in [Direction::Forward, Direction::Bidirectional] {
            let d = direction.count();
            let op = Op::Lstm(Lstm {
                hidden: 8,
                direction,
                batch_first: false,
                has_bias: true,
                has_h0: true,
                has_c0: false,
                has_peepholes: false,
                clip: None,
                input_forget: false,
            });
            let inputs = [
                values(&[5, 2, 6], 1),
                values(&[d, 32, 6], 2),
                values(&[d, 32, 8], 3),
                values(&[d, 64], 4),
                values(&[d, 2, 8], 5),
            ];
            check(&op, &inputs, &[false, true, true, true, false], 1e-5);
        }
    }
}

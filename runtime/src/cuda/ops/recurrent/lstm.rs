//! LSTM (ONNX gate order i, o, f, c; peepholes, clip and input-forget coupling supported):
//! one projection GEMM, then, for batches of at most [`FUSED_BATCH`],
//! - the whole sequence as one `recurrent_lstm_seq*` launch ([`SeqKernel`]: a warp per hidden
//!   unit keeps its rows of R in registers; blocks hand h to each other through tagged words, no
//!   launch per step) when the hidden size allows and every block fits on the GPU at once (a
//!   launch whose blocks could not all run fails after ~10 s instead of hanging). h passes
//!   between steps in f32 even in an f16 plan, where the other paths round it to f16 in Y;
//! - else one `recurrent_lstm_step_*` per step and direction (the recurrent product by a warp per
//!   hidden unit, fused with the cell), h read from Y's previous rows, Y_h written at the end;
//!
//! and for larger batches, per step and direction, a recurrent GEMM and `recurrent_lstm_gates_*`,
//! h living in Y_h throughout. The cell state c is f32 whatever the
//! dtype: in Y_c for f32, and for f16 in scratch (widened from c0 at the start, narrowed into
//! Y_c at the end), so an fp16 plan never rounds it to half precision between steps.

use cudarc::driver::{result as dr, CudaFunction};

use super::{optional, supports as rnn_supports, Rnn};
use crate::cuda::device::{arg, cuda_err, Device, DeviceBuffer};
use crate::cuda::ops::elementwise::cast::FloatCast;
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Lstm;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

pub fn supports(op: &Lstm, inputs: &[Fact], outputs: &[Fact]) -> Support {
    if outputs.len() != 3 {
        return Err("LSTM without Y_h and Y_c outputs".into());
    }
    if op.batch_first && op.direction.count() == 2 {
        // Its states are [B, D, H]; the kernels address [D, B, H].
        return Err("batch-first bidirectional LSTM".into());
    }
    rnn_supports(inputs, outputs)
}

/// An f16 LSTM's f32 cell state: casts in and out of the scratch copy.
struct CellF32 {
    widen: FloatCast,
    narrow: FloatCast,
    bytes: usize,
}

/// Batches up to this size run the fused step kernel.
const FUSED_BATCH: usize = 4;

/// Largest hidden size of the sequence kernel (its `KC` = 16 registers per gate and lane; its
/// shared h buffer is sized by `SEQ_HIDDEN` in `recurrent.cu`, which must agree).
const SEQ_HIDDEN: usize = 512;
/// Threads per block of the sequence kernel: 8 warps, 8 hidden units.
const SEQ_BLOCK: usize = 256;

/// The one-launch sequence kernel and its persistent state: the launch epoch and finished-block
/// count (two u32), then the double-buffered h words (`[D][2][B][H]` u64), zeroed at build.
struct SeqKernel {
    f: CudaFunction,
    state: DeviceBuffer,
    blocks: u32,
}

impl SeqKernel {
    /// The sequence kernel for this LSTM, or None when its shape does not suit it or its
    /// blocks cannot all be resident at once (they wait on each other).
    fn new(b: &BuildCtx, rnn: &Rnn) -> Result<Option<SeqKernel>> {
        if rnn.batch > FUSED_BATCH || rnn.hidden > SEQ_HIDDEN {
            return Ok(None);
        }
        let kc = if rnn.hidden <= 128 { 4 } else { 16 };
        let s = crate::cuda::ops::float_suffix(rnn.dtype).expect("checked by supports");
        let f = b.dev.function(&format!("recurrent_lstm_seq{kc}_{s}"))?;
        let per_dir = rnn.hidden.div_ceil(SEQ_BLOCK / 32);
        let blocks = per_dir * rnn.dirs;
        if blocks > b.dev.resident_blocks(&f, SEQ_BLOCK)? {
            return Ok(None);
        }
        let words = rnn.dirs * 2 * rnn.batch * rnn.hidden;
        Ok(Some(SeqKernel {
            f,
            state: DeviceBuffer::zeroed(b.dev, 8 + 8 * words)?,
            blocks: per_dir as u32,
        }))
    }
}

struct LstmKernel {
    op: Lstm,
    rnn: Rnn,
    /// The whole sequence in one launch, where it suits.
    seq: Option<SeqKernel>,
    /// `recurrent_lstm_step_*`, for small batches.
    step: Option<CudaFunction>,
    /// Set when the dtype is not f32.
    cell: Option<CellF32>,
}

pub fn build(op: &Lstm, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0].shape;
    let fused = (if op.batch_first { x[0] } else { x[1] }) <= FUSED_BATCH;
    let rnn = Rnn::new(b, 4, op.hidden, op.direction, op.batch_first, "lstm", fused)?;
    let seq = if fused {
        SeqKernel::new(b, &rnn)?
    } else {
        None
    };
    // The per-step paths' pieces, needless when the sequence kernel runs (it keeps c in f32
    // registers and reads no step kernel).
    let cell = if rnn.dtype == DType::F32 || seq.is_some() {
        None
    } else {
        let n = rnn.dirs * rnn.batch * rnn.hidden;
        Some(CellF32 {
            widen: FloatCast::new(b.dev, rnn.dtype, DType::F32, n)?,
            narrow: FloatCast::new(b.dev, DType::F32, rnn.dtype, n)?,
            bytes: (n * 4).div_ceil(256) * 256,
        })
    };
    let step = if fused && seq.is_none() {
        let s = crate::cuda::ops::float_suffix(rnn.dtype).expect("checked by supports");
        Some(b.dev.function(&format!("recurrent_lstm_step_{s}"))?)
    } else {
        None
    };
    Ok(Box::new(LstmKernel {
        op: op.clone(),
        rnn,
        seq,
        step,
        cell,
    }))
}

/// A launch's buffers by role (0 for an absent optional input).
struct LstmIo {
    x: u64,
    w: u64,
    r: u64,
    bias: u64,
    h0: u64,
    c0: u64,
    peep: u64,
    y: u64,
    yh: u64,
    yc: u64,
}

impl LstmIo {
    fn new(op: &Lstm, io: &Io) -> LstmIo {
        let mut k = 3;
        let mut next = |present| optional(io.inputs, present, &mut k);
        let (bias, h0, c0, peep) = (
            next(op.has_bias),
            next(op.has_h0),
            next(op.has_c0),
            next(op.has_peepholes),
        );
        LstmIo {
            x: io.inputs[0],
            w: io.inputs[1],
            r: io.inputs[2],
            bias,
            h0,
            c0,
            peep,
            y: io.outputs[0],
            yh: io.outputs[1],
            yc: io.outputs[2],
        }
    }
}

impl LstmKernel {
    /// Sets the f32 cell state (`[D, B, H]` at `c`) from c0 (in the op's dtype), or zeros.
    fn init_cell(&self, dev: &Device, c: u64, c0: u64, yc: u64) -> Result<()> {
        let Some(cell) = &self.cell else {
            return self.rnn.init_state(dev, yc, (c0 != 0).then_some(c0));
        };
        if c0 != 0 {
            return cell.widen.run(dev, c0, c);
        }
        // SAFETY: `c` is this kernel's scratch, `cell.bytes` long.
        unsafe { dr::memset_d8_async(c, 0, cell.bytes, dev.cu_stream()) }
            .map_err(|e| cuda_err("initialising the LSTM cell state", e))
    }
}

impl LstmKernel {
    /// The whole sequence, both directions, in one launch: h0 and c0 are read where given, Y,
    /// Y_h and Y_c written, the cell state kept in f32 registers throughout.
    fn launch_seq(&self, seq: &SeqKernel, dev: &Device, io: &Io) -> Result<()> {
        let (op, r) = (&self.op, &self.rnn);
        let LstmIo {
            x,
            w,
            r: rw,
            bias,
            h0,
            c0,
            peep,
            y,
            yh,
            yc,
        } = LstmIo::new(op, io);
        let (xw, _) = r.scratch(io.scratch);
        let xw = r.project(dev, x, w, xw)?;
        let ((xw_t, xw_b, xw_d), (y_t, y_b, y_d)) = (r.xw_strides(), r.y_strides());
        let (sync, slots) = (seq.state.ptr, seq.state.ptr + 8);
        let (steps, batch, hidden) = (r.seq as i64, r.batch as i64, r.hidden as i64);
        let reverse = r.reverse as i32;
        let clip = op.clip.unwrap_or(0.0);
        let input_forget = op.input_forget as i32;
        // SAFETY: (LSTM_SEQ_PARAMS in recurrent.cu) addresses from the checked facts; the state
        // buffer holds the two counters and D·2·B·H words; every block is resident (checked at
        // build), so the warps waiting on each other all run.
        unsafe {
            dev.launch_grid3(
                &seq.f,
                (seq.blocks, r.dirs as u32, 1),
                SEQ_BLOCK as u32,
                &mut [
                    arg(&xw),
                    arg(&xw_t),
                    arg(&xw_b),
                    arg(&xw_d),
                    arg(&rw),
                    arg(&h0),
                    arg(&c0),
                    arg(&bias),
                    arg(&peep),
                    arg(&y),
                    arg(&y_t),
                    arg(&y_b),
                    arg(&y_d),
                    arg(&yh),
                    arg(&yc),
                    arg(&slots),
                    arg(&sync),
                    arg(&steps),
                    arg(&batch),
                    arg(&hidden),
                    arg(&reverse),
                    arg(&clip),
                    arg(&input_forget),
                ],
            )
        }
    }
}

impl CudaKernel for LstmKernel {
    fn scratch_bytes(&self) -> usize {
        match &self.cell {
            None => self.rnn.scratch_bytes(),
            Some(c) => self.rnn.scratch_bytes().div_ceil(256) * 256 + c.bytes,
        }
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        if let Some(seq) = &self.seq {
            return self.launch_seq(seq, dev, io);
        }
        let (op, r) = (&self.op, &self.rnn);
        let LstmIo {
            x,
            w,
            r: rw,
            bias,
            h0,
            c0,
            peep,
            y,
            yh,
            yc,
        } = LstmIo::new(op, io);
        let (xw, hr) = r.scratch(io.scratch);
        // The f32 cell state: Y_c itself, or scratch after xw and hr.
        let c_all = match self.cell {
            None => yc,
            Some(_) => io.scratch + r.scratch_bytes().div_ceil(256) as u64 * 256,
        };
        let xw = r.project(dev, x, w, xw)?;
        r.init_state(dev, yh, (h0 != 0).then_some(h0))?;
        self.init_cell(dev, c_all, c0, yc)?;
        let el = r.dtype.size() as u64;
        let (batch, hidden) = (r.batch as i64, r.hidden as i64);
        let clip = op.clip.unwrap_or(0.0);
        let input_forget = op.input_forget as i32;
        for d in 0..r.dirs {
            let h = r.state(yh, d);
            let c = c_all + (d * r.batch * r.hidden * 4) as u64;
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
            if let Some(f) = &self.step {
                let r_d = rw + (d * 4 * r.hidden * r.hidden) as u64 * el;
                let (hidden_stride, null) = (hidden, 0u64);
                // One step reads h0 and writes Y_h in the same launch: read h0 from a copy in
                // the (here unused) hr scratch instead, so no warp sees another's new h.
                let h0_at = if r.seq == 1 {
                    let bytes = r.batch * r.hidden * r.dtype.size();
                    // SAFETY: hr holds B·G·H ≥ B·H elements; h holds B·H.
                    unsafe { dr::memcpy_dtod_async(hr, h, bytes, dev.cu_stream()) }
                        .map_err(|e| cuda_err("copying the LSTM's initial state", e))?;
                    hr
                } else {
                    h
                };
                for s in 0..r.seq {
                    let t = r.time(s, d);
                    let (xw_t, xw_stride) = r.xw_rows(xw, t, d);
                    let (y_t, y_stride) = r.y_rows(y, t, d);
                    // h_{t-1}: Y_h (h0) first, then the previous step's rows of Y.
                    let (h_in, h_in_stride) = if s == 0 {
                        (h0_at, hidden_stride)
                    } else {
                        r.y_rows(y, r.time(s - 1, d), d)
                    };
                    let h_last = if s + 1 == r.seq { &h } else { &null };
                    // SAFETY: (const T* xw, i64 xw_stride, const T* r, const T* h_in,
                    // i64 h_in_stride, const T* bias, const T* peep, float* c, T* y,
                    // i64 y_stride, T* h_last, i64 batch, i64 hidden, float clip,
                    // int input_forget); addresses derived from the checked facts; h_in and
                    // y_t are different rows of Y (or Y_h and Y).
                    unsafe {
                        dev.launch(
                            f,
                            r.batch * r.hidden * 32,
                            &mut [
                                arg(&xw_t),
                                arg(&xw_stride),
                                arg(&r_d),
                                arg(&h_in),
                                arg(&h_in_stride),
                                arg(&bias_d),
                                arg(&peep_d),
                                arg(&c),
                                arg(&y_t),
                                arg(&y_stride),
                                arg(h_last),
                                arg(&batch),
                                arg(&hidden),
                                arg(&clip),
                                arg(&input_forget),
                            ],
                        )?;
                    }
                }
                continue;
            }
            for s in 0..r.seq {
                let t = r.time(s, d);
                r.recurrent(dev, h, rw, d, hr)?;
                let (xw_t, xw_stride) = r.xw_rows(xw, t, d);
                let (y_t, y_stride) = r.y_rows(y, t, d);
                // SAFETY: (const T* xw, i64 xw_stride, const T* hr, const T* bias,
                // const T* peep, T* h, float* c, T* y, i64 y_stride, i64 batch, i64 hidden,
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
        match &self.cell {
            Some(cell) => cell.narrow.run(dev, c_all, yc),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, check_f16, values};
    use crate::ir::ops::{Direction, Lstm};
    use crate::ir::Op;

    #[test]
    fn lstm_matches_the_cpu() {
        // Batches up to 4 take the one-launch sequence kernel (KC = 4 up to a hidden size of
        // 128, 16 above; 203 units leave the last block's warps partly idle and lanes a partial
        // column), hidden sizes above 512 the per-step fused kernel, batch 6 the GEMM and gate
        // kernels; 7 steps of batch 6 (42 rows) project through cuBLAS, the others through the
        // few-row kernel.
        for (seq, direction, batch, hidden) in [
            (5, Direction::Forward, 2, 8),
            (5, Direction::Bidirectional, 2, 8),
            (5, Direction::Reverse, 1, 40),
            (6, Direction::Bidirectional, 4, 203),
            (3, Direction::Forward, 1, 520),
            (5, Direction::Forward, 6, 8),
            (7, Direction::Bidirectional, 6, 40),
            // One step: h0 is read and Y_h written by the same launch.
            (1, Direction::Bidirectional, 2, 40),
            (1, Direction::Forward, 1, 520),
        ] {
            let d = direction.count();
            let op = Op::Lstm(Lstm {
                hidden,
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
                values(&[seq, batch, 6], 1),
                values(&[d, 4 * hidden, 6], 2),
                values(&[d, 4 * hidden, hidden], 3),
                values(&[d, 8 * hidden], 4),
                values(&[d, batch, hidden], 5),
            ];
            // Reductions of hundreds of terms differ from the CPU's order by more than 1e-5.
            let tol = if hidden > 128 { 5e-5 } else { 1e-5 };
            check(&op, &inputs, &[false, true, true, true, false], tol);
            // f16 activations and weights, f32 cell state.
            // In f16 the rounded inputs of a 203-term reduction add up past 1e-2 (1.07e-2 seen).
            let tol16 = if hidden > 128 { 2e-2 } else { 1e-2 };
            check_f16(&op, &inputs, &[false, true, true, true, false], tol16);
        }
    }

    #[test]
    fn lstm_with_c0_peepholes_clip_and_coupling_matches_the_cpu() {
        // Batch 2 runs the sequence kernel, hidden 600 the per-step kernel: both read c0 and
        // the peepholes, clip the pre-activations and couple the input and forget gates.
        for (hidden, input_forget) in [(40, false), (40, true), (600, true)] {
            let (seq, batch, d) = (4, if hidden > 512 { 1 } else { 2 }, 2);
            let op = Op::Lstm(Lstm {
                hidden,
                direction: Direction::Bidirectional,
                batch_first: false,
                has_bias: true,
                has_h0: true,
                has_c0: true,
                has_peepholes: true,
                clip: Some(0.5),
                input_forget,
            });
            let inputs = [
                values(&[seq, batch, 6], 1),
                values(&[d, 4 * hidden, 6], 2),
                values(&[d, 4 * hidden, hidden], 3),
                values(&[d, 8 * hidden], 4),
                values(&[d, batch, hidden], 5),
                values(&[d, batch, hidden], 6),
                values(&[d, 3 * hidden], 7),
            ];
            let consts = [false, true, true, true, false, false, true];
            check(
                &op,
                &inputs,
                &consts,
                if hidden > 128 { 5e-5 } else { 1e-5 },
            );
            check_f16(
                &op,
                &inputs,
                &consts,
                if hidden > 128 { 2e-2 } else { 1e-2 },
            );
        }
    }

    #[test]
    fn lstm_with_a_selection_w_reads_x_in_place() {
        // W the column selection of a folded embedding (`compiler::passes::rnn`): X is the
        // projection, used without a GEMM; the CPU reference multiplies.
        let (hidden, d) = (8, 2);
        let n = d * 4 * hidden;
        let select: Vec<f32> = (0..n * n)
            .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
            .collect();
        let op = Op::Lstm(Lstm {
            hidden,
            direction: Direction::Bidirectional,
            batch_first: false,
            has_bias: true,
            has_h0: false,
            has_c0: false,
            has_peepholes: false,
            clip: None,
            input_forget: false,
        });
        let inputs = [
            values(&[5, 2, n], 1),
            crate::Tensor::from_vec(&[d, 4 * hidden, n], select).unwrap(),
            values(&[d, 4 * hidden, hidden], 3),
            values(&[d, 8 * hidden], 4),
        ];
        check(&op, &inputs, &[false, true, true, true], 1e-5);
        check_f16(&op, &inputs, &[false, true, true, true], 1e-2);
    }
}

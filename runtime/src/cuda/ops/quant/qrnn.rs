//! QLstm and QGru (int8 weights, one scale per row) on the GPU: the weights widened once at
//! build to `q·scale[row]` in the plan's float type and uploaded into the kernel's own buffers,
//! then the float LSTM/GRU kernels (`cuda::ops::recurrent`) run over them. X and h stay float:
//! the CPU kernels quantize them per step (onnxruntime's DynamicQuantizeLSTM), so the two
//! backends differ by that quantization, and the GPU's result is the float recurrence of the
//! file's int8 weights. At batch 1 a recurrent step reads its weights once and waits on the
//! step before it; the sequence kernel keeps R in registers, and the file stays a quarter of
//! the float one.

use std::borrow::Cow;

use crate::cuda::device::{Device, DeviceBuffer};
use crate::cuda::ops::recurrent::{gru, lstm};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{QGru, QLstm};
use crate::ir::Fact;
use crate::tensor::{DType, TensorView};
use crate::{Error, Result};

/// The facts with W and R in X's float type, as the float op has them.
fn float_facts(inputs: &[Fact]) -> Vec<Fact> {
    let mut f = inputs.to_vec();
    for k in [1, 2] {
        f[k].dtype = inputs[0].dtype;
    }
    f
}

pub fn supports_lstm(op: &QLstm, inputs: &[Fact], outputs: &[Fact]) -> Support {
    lstm::supports(&op.lstm, &float_facts(inputs), outputs)
}

pub fn supports_gru(op: &QGru, inputs: &[Fact], outputs: &[Fact]) -> Support {
    gru::supports(&op.gru, &float_facts(inputs), outputs)
}

/// `w` (i8, rows of `row` values) widened to `q·scale[r]`, as f32 bytes or rounded once to f16.
fn widen(w: &[u8], scale: &[f32], row: usize, to: DType) -> Result<Vec<u8>> {
    let f32s: Vec<u8> = w
        .iter()
        .enumerate()
        .flat_map(|(i, &q)| (q as i8 as f32 * scale[i / row.max(1)]).to_le_bytes())
        .collect();
    crate::cuda::precision::convert(&f32s, DType::F32, to)
}

/// A float recurrent kernel over widened weights: launched with W and R replaced by them.
struct Widened {
    inner: Box<dyn CudaKernel>,
    w: DeviceBuffer,
    r: DeviceBuffer,
}

/// Widens W and R (constants) and builds the float op's kernel over them with `build`.
fn build_widened(
    b: &BuildCtx,
    w_scale: &[f32],
    r_scale: &[f32],
    build: impl FnOnce(&BuildCtx) -> Result<Box<dyn CudaKernel>>,
) -> Result<Box<dyn CudaKernel>> {
    let facts = float_facts(b.inputs);
    let to = facts[0].dtype;
    let mut widened: Vec<Cow<[u8]>> = Vec::with_capacity(2);
    for (k, scale) in [(1, w_scale), (2, r_scale)] {
        let c = b.consts.get(k).copied().flatten().ok_or_else(|| {
            Error::Unsupported("int8 recurrent weights that are not constants".into())
        })?;
        let row = c.shape.last().copied().unwrap_or(1);
        widened.push(Cow::Owned(widen(c.data, scale, row, to)?));
    }
    let mut consts: Vec<Option<TensorView>> = b.consts.to_vec();
    for (k, data) in [1, 2].into_iter().zip(&widened) {
        consts[k] = Some(TensorView {
            dtype: to,
            shape: &facts[k].shape,
            data,
        });
    }
    let inner = build(&BuildCtx {
        dev: b.dev,
        inputs: &facts,
        outputs: b.outputs,
        consts: &consts,
        fused: None,
        prologue: None,
    })?;
    Ok(Box::new(Widened {
        inner,
        w: DeviceBuffer::from_bytes(b.dev, &widened[0])?,
        r: DeviceBuffer::from_bytes(b.dev, &widened[1])?,
    }))
}

pub fn build_lstm(op: &QLstm, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    build_widened(b, &op.w_scale, &op.r_scale, |b| lstm::build(&op.lstm, b))
}

pub fn build_gru(op: &QGru, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    build_widened(b, &op.w_scale, &op.r_scale, |b| gru::build(&op.gru, b))
}

/// Most inputs of LSTM (X, W, R, B, sequence lengths, h0, c0, peepholes).
const MAX_INPUTS: usize = 8;

impl CudaKernel for Widened {
    fn scratch_bytes(&self) -> usize {
        self.inner.scratch_bytes()
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let n = io.inputs.len().min(MAX_INPUTS);
        let mut inputs = [0u64; MAX_INPUTS];
        inputs[..n].copy_from_slice(&io.inputs[..n]);
        inputs[1] = self.w.ptr;
        inputs[2] = self.r.ptr;
        self.inner.launch(
            dev,
            &Io {
                inputs: &inputs[..n],
                outputs: io.outputs,
                scratch: io.scratch,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::{check_against, values};
    use crate::ir::ops::{Direction, Gru, Lstm, Op};
    use crate::Tensor;

    #[test]
    fn weights_widen_by_their_row_scale() {
        let w = [1u8, 255, 128, 2];
        let f = widen(&w, &[0.5, 0.25], 2, DType::F32).unwrap();
        let f: Vec<f32> = bytemuck::cast_slice(&f).to_vec();
        assert_eq!(f, [0.5, -0.5, -32.0, 0.5]);
        let h = widen(&w, &[0.5, 0.25], 2, DType::F16).unwrap();
        assert_eq!(h.len(), 8);
    }

    /// i8 weights and their scales; the same weights widened, for the float reference.
    fn int8(shape: &[usize], seed: usize) -> (Tensor, Vec<f32>, Tensor) {
        let mut q = Tensor::zeros(DType::I8, shape);
        for (i, b) in q.bytes_mut().iter_mut().enumerate() {
            *b = ((i * 97 + seed * 31) % 251) as u8;
        }
        let row = shape[shape.len() - 1];
        let rows = q.len() / row;
        let scale: Vec<f32> = (0..rows).map(|r| 0.002 + (r % 7) as f32 * 3e-4).collect();
        let f = widen(q.bytes(), &scale, row, DType::F32).unwrap();
        let wide = Tensor::from_bytes(DType::F32, shape, &f).unwrap();
        (q, scale, wide)
    }

    /// The GPU's QLstm/QGru equal the CPU's float LSTM/GRU over the widened weights (they run
    /// the same kernels as the float op's tests, so the same tolerance).
    #[test]
    fn qlstm_and_qgru_run_the_float_recurrence_of_their_weights() {
        let (seq, batch, input, hidden, d) = (5, 2, 6, 16, 2);
        let x = values(&[seq, batch, input], 1);
        let lstm = Lstm {
            hidden,
            direction: Direction::Bidirectional,
            batch_first: false,
            has_bias: true,
            has_h0: false,
            has_c0: false,
            has_peepholes: false,
            clip: None,
            input_forget: false,
        };
        let (w, w_scale, wf) = int8(&[d, 4 * hidden, input], 1);
        let (r, r_scale, rf) = int8(&[d, 4 * hidden, hidden], 2);
        let bias = values(&[d, 8 * hidden], 3);
        let q = Op::QLstm(QLstm {
            lstm: lstm.clone(),
            w_scale,
            r_scale,
        });
        check_against(
            &q,
            &[x.clone(), w, r, bias.clone()],
            &[false, true, true, true],
            1e-5,
            &Op::Lstm(lstm),
            &[x.clone(), wf, rf, bias],
        );
        let gru = Gru {
            hidden,
            direction: Direction::Forward,
            batch_first: false,
            has_bias: true,
            has_h0: false,
            linear_before_reset: true,
            clip: None,
        };
        let (w, w_scale, wf) = int8(&[1, 3 * hidden, input], 4);
        let (r, r_scale, rf) = int8(&[1, 3 * hidden, hidden], 5);
        let bias = values(&[1, 6 * hidden], 6);
        let q = Op::QGru(QGru {
            gru: gru.clone(),
            w_scale,
            r_scale,
        });
        check_against(
            &q,
            &[x.clone(), w, r, bias.clone()],
            &[false, true, true, true],
            1e-5,
            &Op::Gru(gru),
            &[x, wf, rf, bias],
        );
    }
}

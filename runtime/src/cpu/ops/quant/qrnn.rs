//! What QLstm and QGru share: the int8 weights packed at build, and the products of
//! `edgefuse_kernels::rnn` computed with dynamic quantization (ONNX Runtime's
//! DynamicQuantizeLSTM scheme). X (all time steps at once) and each step's h are quantized to u8
//! with a per-tensor scale and zero point taken from their range; the input projection is one
//! product (u8 × i8 → i32, dequantized by `sx·sw[row]` and added to the biases); each step's
//! recurrent product, for a batch of one, one product with h, and for larger batches one `qgemm`
//! whose columns are the batch items. At batch 1 on AVX-512 VNNI both products run over W and R
//! interleaved in blocks of 16 rows (`qgemm::row_blocks`, with `qgemm`'s and `gemv`'s arithmetic);
//! elsewhere the projection is one `qgemm` and the step product one `qgemm::gemv` over R widened
//! to i16. Gate math, c and h stay f32.

use edgefuse_kernels::qgemm::gemv::gemv;
use edgefuse_kernels::qgemm::row_blocks::{Epi, RowBlocks};
use edgefuse_kernels::qgemm::Source;
use edgefuse_kernels::qgemm::{quantize_byte, Dynamic, Epilogue, OutKind, QKernel, QWeights};
use edgefuse_kernels::rnn::{RnnDims, RnnProducts};

use super::requant::constant;
use crate::cpu::ops::recurrent::rnn_dims;
use crate::cpu::ops::BuildCtx;
use crate::ir::ops::Direction;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

/// ONNX DynamicQuantizeLinear's parameters for `x`: the range `[min(0, min x), max(0, max x)]`
/// mapped onto 0..=255, as onnxruntime's `GetQuantizationParameter` computes them. Returns
/// (scale, zero point); an all-zero tensor gets (1, 0), and a range past f32's gets an infinite
/// scale and zero point 0, as there (every value then quantizes to 0).
pub fn dynamic_params(x: &[f32]) -> (f32, i32) {
    let (lo, hi) = edgefuse_kernels::vmath::range_with_zero(x);
    if hi == lo {
        return (1.0, 0);
    }
    let scale = (hi - lo) / 255.0;
    let zp = (-lo / scale).clamp(0.0, 255.0).round_ties_even() as i32;
    (scale, zp)
}

/// `x` quantized with `(scale, zp)`: `clamp(round(x/scale) + zp, 0, 255)`.
#[inline(always)]
pub fn quantize_u8(v: f32, inv_scale: f32, zp: i32) -> u8 {
    quantize_byte(v * inv_scale + zp as f32, 0.0, 255.0)
}

/// W for the input projection: interleaved for VNNI (batch 1), or packed for `qgemm`.
enum InWeights {
    Blocks(RowBlocks),
    Packed(QWeights),
}

/// R for the step products: interleaved for VNNI or rows widened to i16 for `gemv` (batch 1),
/// or packed for `qgemm`.
enum RecWeights {
    Blocks(RowBlocks),
    Rows(Vec<i16>),
    Packed(QWeights),
}

fn dequantizing(scale: &[f32]) -> Epilogue {
    Epilogue {
        mult: scale.to_vec(),
        add: vec![0.0; scale.len()],
        kind: OutKind::F32 {
            lo: f32::NEG_INFINITY,
            hi: f32::INFINITY,
        },
    }
}

/// Sizes, packed weights and the element counts every run is checked against.
pub(super) struct QRecurrent {
    pub dims: RnnDims,
    gates: usize,
    input_facts: Vec<(DType, usize)>,
    output_lens: Vec<usize>,
    /// W `[D·G·H, I]`, with `sw` as the epilogue's multipliers.
    w: InWeights,
    w_epi: Epilogue,
    /// R `[D·G·H, H]`, and its row scales (the epilogue's multipliers when packed).
    r: RecWeights,
    r_epi: Epilogue,
    /// Floats of the float recurrence's scratch (projections, gates, states).
    floats: usize,
}

impl QRecurrent {
    /// `b.inputs` must already have passed the op's shape inference (W and R i8 constants).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        b: &BuildCtx,
        gates: usize,
        hidden: usize,
        direction: Direction,
        batch_first: bool,
        w_scale: &[f32],
        r_scale: &[f32],
        floats: impl Fn(&RnnDims) -> usize,
    ) -> Result<QRecurrent> {
        let dims = rnn_dims(b, hidden, direction, batch_first);
        if b.outputs.iter().any(|f| f.dtype != DType::F32) {
            return Err(Error::invalid(format!("{name}: outputs must be f32")));
        }
        if hidden >= 1 << 15 {
            return Err(Error::Unsupported(format!(
                "{name} with hidden size {hidden} (the int8 step product takes below 32768)"
            )));
        }
        let rows = dims.dirs * gates * hidden;
        let wv = constant(b.consts, 1, &format!("{name} weights W"))?;
        let rv = constant(b.consts, 2, &format!("{name} weights R"))?;
        let blocks = dims.batch == 1 && RowBlocks::pays();
        let w = if blocks {
            let wi: Vec<i8> = wv.data.iter().map(|&v| v as i8).collect();
            InWeights::Blocks(RowBlocks::new(&wi, rows, dims.input))
        } else {
            let wi: Vec<i32> = wv.data.iter().map(|&v| v as i8 as i32).collect();
            InWeights::Packed(QWeights::new(QKernel::detect(), &wi, rows, dims.input, 0))
        };
        let r = if blocks {
            let ri: Vec<i8> = rv.data.iter().map(|&v| v as i8).collect();
            RecWeights::Blocks(RowBlocks::new(&ri, rows, hidden))
        } else if dims.batch == 1 {
            RecWeights::Rows(rv.data.iter().map(|&v| v as i8 as i16).collect())
        } else {
            let ri: Vec<i32> = rv.data.iter().map(|&v| v as i8 as i32).collect();
            RecWeights::Packed(QWeights::new(QKernel::detect(), &ri, rows, hidden, 0))
        };
        Ok(QRecurrent {
            dims,
            gates,
            input_facts: b.inputs.iter().map(|f| (f.dtype, f.len())).collect(),
            output_lens: b.outputs.iter().map(|f| f.len()).collect(),
            w,
            w_epi: dequantizing(w_scale),
            r,
            r_epi: dequantizing(r_scale),
            floats: floats(&dims),
        })
    }

    /// X as u8, and room for `RowBlocks` to read the last row's k rounded up to 4.
    fn xq_bytes(&self) -> usize {
        (self.dims.x_len() + 3).next_multiple_of(4)
    }
    /// h as i16 (`gemv`) or u8 (the others, `RowBlocks` reading k rounded up to 4).
    fn hq_bytes(&self) -> usize {
        (2 * self.dims.batch * self.dims.hidden + 3) & !3
    }

    fn panel_bytes(&self) -> usize {
        let w = match &self.w {
            InWeights::Packed(w) => w.scratch_bytes(),
            InWeights::Blocks(_) => 0,
        };
        match &self.r {
            RecWeights::Packed(r) => r.scratch_bytes().max(w),
            RecWeights::Rows(_) | RecWeights::Blocks(_) => w,
        }
    }

    /// Floats for the recurrence, then h (i16 or u8), X as u8, and the `qgemm` products' panel
    /// scratch.
    pub fn scratch_bytes(&self) -> usize {
        4 * self.floats + self.hq_bytes() + self.xq_bytes() + self.panel_bytes()
    }

    /// Checks the run-time buffers against the build-time facts, then splits the scratch into
    /// the recurrence's floats and the int8 products.
    pub fn prepare<'s>(
        &'s self,
        name: &str,
        inputs: &[TensorView],
        outputs: &[TensorViewMut],
        scratch: &'s mut [u8],
    ) -> Result<(&'s mut [f32], QProducts<'s>)> {
        let ok = inputs.len() == self.input_facts.len()
            && outputs.len() == self.output_lens.len()
            && inputs
                .iter()
                .zip(&self.input_facts)
                .all(|(v, &(dt, n))| v.dtype == dt && v.data.len() == dt.size() * n)
            && outputs
                .iter()
                .zip(&self.output_lens)
                .all(|(v, &n)| v.dtype == DType::F32 && v.data.len() == 4 * n)
            && scratch.len() >= self.scratch_bytes();
        if !ok {
            return Err(Error::invalid(format!(
                "{name}: buffers do not match the planned shapes"
            )));
        }
        let (floats, rest) = scratch.split_at_mut(4 * self.floats);
        let (hq, rest) = rest.split_at_mut(self.hq_bytes());
        let (xq, panel) = rest.split_at_mut(self.xq_bytes());
        let cast = |e: bytemuck::PodCastError| Error::invalid(format!("{name} scratch: {e}"));
        let floats: &mut [f32] = bytemuck::try_cast_slice_mut(floats).map_err(cast)?;
        let hq = match self.r {
            RecWeights::Rows(_) => HBuf::I16(bytemuck::try_cast_slice_mut(hq).map_err(cast)?),
            RecWeights::Packed(_) | RecWeights::Blocks(_) => HBuf::U8(hq),
        };
        Ok((
            floats,
            QProducts {
                rec: self,
                hq,
                xq,
                panel,
            },
        ))
    }
}

/// Quantized h: minus its zero point for `gemv`, or u8 for `RowBlocks` and `qgemm`.
enum HBuf<'s> {
    I16(&'s mut [i16]),
    U8(&'s mut [u8]),
}

/// The int8 products of one run, over the scratch.
pub(super) struct QProducts<'s> {
    rec: &'s QRecurrent,
    hq: HBuf<'s>,
    xq: &'s mut [u8],
    panel: &'s mut [u8],
}

impl RnnProducts for QProducts<'_> {
    fn project(&mut self, x: &[f32], rows: usize, proj: &mut [f32]) {
        let rec = self.rec;
        let k = rec.dims.input;
        let n = match &rec.w {
            InWeights::Blocks(w) => w.rows(),
            InWeights::Packed(w) => w.rows(),
        };
        let x = &x[..rows * k];
        let (sx, zx) = dynamic_params(x);
        let inv = 1.0 / sx;
        for (q, &v) in self.xq.iter_mut().zip(x) {
            *q = quantize_u8(v, inv, zx);
        }
        if rows == 0 || n == 0 {
            return;
        }
        let w = match &rec.w {
            InWeights::Blocks(w) => {
                let epi = Epi::Dynamic {
                    epi: &rec.w_epi,
                    accumulate: true,
                };
                return w.run(self.xq, k, rows, zx, sx, 0..n, epi, proj, n);
            }
            InWeights::Packed(w) => w,
        };
        let src = Source::Rows { x: self.xq, ld: k };
        let dynx = Dynamic {
            zero_point: zx,
            scale: sx,
            accumulate: true,
        };
        w.run_dynamic(
            &src,
            0,
            rows,
            dynx,
            &rec.w_epi,
            proj,
            1,
            n,
            self.panel,
            0..n,
        );
    }

    fn recur(
        &mut self,
        dir: usize,
        col0: usize,
        cols: usize,
        h: &[f32],
        rows: usize,
        gates: &mut [f32],
        ld: usize,
        accumulate: bool,
    ) {
        let rec = self.rec;
        let (bs, hs) = (rows, rec.dims.hidden);
        let h = &h[..bs * hs];
        let (sh, zh) = dynamic_params(h);
        let inv = 1.0 / sh;
        let row0 = dir * rec.gates * hs + col0;
        match (&rec.r, &mut self.hq) {
            (RecWeights::Blocks(r), HBuf::U8(hq)) => {
                for (q, &v) in hq.iter_mut().zip(h) {
                    *q = quantize_u8(v, inv, zh);
                }
                let epi = Epi::Scaled {
                    scale: &rec.r_epi.mult,
                    accumulate,
                };
                r.run(hq, hs, bs, zh, sh, row0..row0 + cols, epi, gates, ld);
            }
            (RecWeights::Rows(r), HBuf::I16(hq)) => {
                for (q, &v) in hq.iter_mut().zip(h) {
                    *q = quantize_u8(v, inv, zh) as i16 - zh as i16;
                }
                let (w, scale) = (&r[row0 * hs..], &rec.r_epi.mult[row0..]);
                for b in 0..bs {
                    let y = &mut gates[b * ld..b * ld + cols];
                    gemv(w, hs, &hq[b * hs..], sh, scale, y, accumulate);
                }
            }
            (RecWeights::Packed(r), HBuf::U8(hq)) => {
                for (q, &v) in hq.iter_mut().zip(h) {
                    *q = quantize_u8(v, inv, zh);
                }
                if cols == 0 || bs == 0 {
                    return;
                }
                let src = Source::Rows { x: hq, ld: hs };
                let dynh = Dynamic {
                    zero_point: zh,
                    scale: sh,
                    accumulate,
                };
                let rows = row0..row0 + cols;
                r.run_dynamic(
                    &src, 0, bs, dynh, &rec.r_epi, gates, 1, ld, self.panel, rows,
                );
            }
            _ => unreachable!("prepare pairs the buffer with the weights"),
        }
    }
}

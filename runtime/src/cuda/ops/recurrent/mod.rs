//! LSTM and GRU on the GPU: the input projection of every time step and direction as one GEMM
//! (our few-row kernel when T·B ≤ 32, else cuBLAS; none when W is a folded embedding's
//! selection), then the recurrence (`kernels/cuda/recurrent.cu`): for small LSTM batches the
//! whole sequence in one launch or one fused launch per step (see `lstm.rs`), otherwise per step
//! and direction one recurrent GEMM (`h · Rᵀ`) and one fused gate kernel that updates h (and c)
//! in place in Y_h (Y_c) and writes Y.

pub mod gru;
pub mod lstm;

use cudarc::driver::{result as dr, CudaFunction};

use crate::cuda::blas::Gemm;
use crate::cuda::device::{cuda_err, Device};
use crate::cuda::ops::linalg::small::{self, SmallGemm};
use crate::cuda::ops::{check_float, float_suffix, BuildCtx, Support};
use crate::ir::ops::Direction;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

/// The input projection: our few-row kernel when T·B is small, else cuBLAS.
pub(super) enum Proj {
    Small(SmallGemm),
    Blas(Gemm),
}

/// Sizes and prepared pieces shared by LSTM (G = 4) and GRU (G = 3).
pub(super) struct Rnn {
    pub dtype: DType,
    pub seq: usize,
    pub batch: usize,
    pub hidden: usize,
    pub dirs: usize,
    pub gates: usize,
    pub reverse: bool,
    pub batch_first: bool,
    /// W is a constant column selection (`compiler::passes::rnn`): X is already the
    /// projection, read in place; no GEMM.
    pub projected: bool,
    /// xw [T·B, D·G·H] = X [T·B, I] · Wᵀ.
    pub proj: Proj,
    /// hr [B, G·H] = h [B, H] · R_dᵀ.
    pub rec: Gemm,
    pub gate: CudaFunction,
}

pub(super) fn supports(inputs: &[Fact], outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    if inputs
        .iter()
        .chain(outputs)
        .any(|f| f.dtype != inputs[0].dtype)
    {
        return Err("recurrent op with mixed dtypes".into());
    }
    Ok(())
}

impl Rnn {
    /// `fused_step`: the caller runs its recurrent products itself (no cuBLAS for them).
    pub fn new(
        b: &BuildCtx,
        gates: usize,
        hidden: usize,
        direction: Direction,
        batch_first: bool,
        kernel: &str,
        fused_step: bool,
    ) -> Result<Rnn> {
        let x = &b.inputs[0];
        let dtype = x.dtype;
        let (seq, batch) = if batch_first {
            (x.shape[1], x.shape[0])
        } else {
            (x.shape[0], x.shape[1])
        };
        let dirs = direction.count();
        let (pm, pn, pk) = (seq * batch, dirs * gates * hidden, x.shape[2]);
        let projected = pk == pn
            && b.consts.get(1).and_then(|c| c.as_ref()).is_some_and(|w| {
                crate::cuda::precision::convert(w.data, w.dtype, DType::F32).is_ok_and(|f| {
                    let f: Vec<f32> = f
                        .chunks_exact(4)
                        .map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]]))
                        .collect();
                    crate::cpu::ops::recurrent::is_selection(&f, pk, pn)
                })
            });
        let proj = if small::suits(pm, pn, pk) {
            let none = (0, 0.0, 0.0);
            Proj::Small(SmallGemm::new(
                b.dev,
                dtype,
                (pm, pn, pk),
                pk,
                1.0,
                None,
                none,
            )?)
        } else {
            let g = Gemm::new(dtype, false, true, pm, pn, pk);
            g.check()?;
            Proj::Blas(g)
        };
        let rec = Gemm::new(dtype, false, true, batch, gates * hidden, hidden);
        rec.check()?;
        if matches!(proj, Proj::Blas(_)) || !fused_step {
            b.dev.blas()?;
        }
        let s = float_suffix(dtype).expect("checked by supports");
        Ok(Rnn {
            dtype,
            seq,
            batch,
            hidden,
            dirs,
            gates,
            reverse: direction == Direction::Reverse,
            batch_first,
            projected,
            proj,
            rec,
            gate: b.dev.function(&format!("recurrent_{kernel}_gates_{s}"))?,
        })
    }

    fn el(&self) -> u64 {
        self.dtype.size() as u64
    }
    fn xw_bytes(&self) -> usize {
        (self.seq * self.batch * self.dirs * self.gates * self.hidden * self.dtype.size())
            .div_ceil(256)
            * 256
    }
    pub fn scratch_bytes(&self) -> usize {
        self.xw_bytes() + self.batch * self.gates * self.hidden * self.dtype.size()
    }
    /// Scratch addresses of xw and hr.
    pub fn scratch(&self, base: u64) -> (u64, u64) {
        (base, base + self.xw_bytes() as u64)
    }

    /// Runs the input projection for every step and direction into `xw` (scratch), and says
    /// where the projection is: `xw`, or X itself when W is a selection.
    pub fn project(&self, dev: &Device, x: u64, w: u64, xw: u64) -> Result<u64> {
        if self.projected {
            return Ok(x);
        }
        self.project_into(dev, x, w, xw)?;
        Ok(xw)
    }

    fn project_into(&self, dev: &Device, x: u64, w: u64, xw: u64) -> Result<()> {
        // SAFETY: X [T·B, I], W [D·G·H, I] and xw (scratch) hold what `proj` describes.
        match &self.proj {
            Proj::Small(g) => unsafe { g.run(dev, x, w, 0, xw) },
            Proj::Blas(g) => unsafe { g.run(dev.blas()?, x, w, xw) },
        }
    }

    /// hr = h · R_dᵀ for direction `d`.
    pub fn recurrent(&self, dev: &Device, h: u64, r: u64, d: usize, hr: u64) -> Result<()> {
        let r_d = r + (d * self.gates * self.hidden * self.hidden) as u64 * self.el();
        // SAFETY: h [B, H], R_d [G·H, H], hr [B, G·H] (scratch).
        unsafe { self.rec.run(dev.blas()?, h, r_d, hr) }
    }

    /// The state of direction `d` inside a `[D, B, H]` tensor.
    pub fn state(&self, base: u64, d: usize) -> u64 {
        base + (d * self.batch * self.hidden) as u64 * self.el()
    }

    /// Sets a `[D, B, H]` state from an initial value, or zeros.
    pub fn init_state(&self, dev: &Device, dst: u64, init: Option<u64>) -> Result<()> {
        let bytes = self.dirs * self.batch * self.hidden * self.dtype.size();
        // SAFETY: dst (and init) hold D·B·H elements.
        unsafe {
            match init {
                Some(src) => dr::memcpy_dtod_async(dst, src, bytes, dev.cu_stream()),
                None => dr::memset_d8_async(dst, 0, bytes, dev.cu_stream()),
            }
        }
        .map_err(|e| cuda_err("initialising the recurrent state", e))
    }

    /// Step `s` of direction `d`: the time index it processes.
    pub fn time(&self, s: usize, d: usize) -> usize {
        if self.reverse || d == 1 {
            self.seq - 1 - s
        } else {
            s
        }
    }

    /// This step's rows of xw for direction `d`: (address of batch row 0, row stride).
    pub fn xw_rows(&self, xw: u64, t: usize, d: usize) -> (u64, i64) {
        let g = self.gates * self.hidden;
        let dg = self.dirs * g;
        let (row0, stride) = if self.batch_first {
            (t * dg + d * g, self.seq * dg)
        } else {
            (t * self.batch * dg + d * g, dg)
        };
        (xw + row0 as u64 * self.el(), stride as i64)
    }

    /// Element strides of xw between time steps, batch rows and directions (the layout
    /// [`Rnn::xw_rows`] addresses).
    pub fn xw_strides(&self) -> (i64, i64, i64) {
        let g = self.gates * self.hidden;
        let dg = self.dirs * g;
        let (t, b) = if self.batch_first {
            (dg, self.seq * dg)
        } else {
            (self.batch * dg, dg)
        };
        (t as i64, b as i64, g as i64)
    }

    /// Element strides of Y between time steps, batch rows and directions (the layout
    /// [`Rnn::y_rows`] addresses).
    pub fn y_strides(&self) -> (i64, i64, i64) {
        let (h, dirs) = (self.hidden, self.dirs);
        let (t, b, d) = if self.batch_first {
            (dirs * h, self.seq * dirs * h, h)
        } else {
            (dirs * self.batch * h, h, self.batch * h)
        };
        (t as i64, b as i64, d as i64)
    }

    /// Where Y receives h_t of direction `d`: (address for batch 0, row stride).
    pub fn y_rows(&self, y: u64, t: usize, d: usize) -> (u64, i64) {
        let h = self.hidden;
        let (off, stride) = if self.batch_first {
            ((t * self.dirs + d) * h, self.seq * self.dirs * h)
        } else {
            ((t * self.dirs + d) * self.batch * h, h)
        };
        (y + off as u64 * self.el(), stride as i64)
    }
}

/// Address of an optional input (the `k`-th present one when `present`), else null.
pub(super) fn optional(inputs: &[u64], present: bool, k: &mut usize) -> u64 {
    if !present {
        return 0;
    }
    let p = inputs[*k];
    *k += 1;
    p
}

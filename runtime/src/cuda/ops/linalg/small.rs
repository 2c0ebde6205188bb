//! Few-row matrix products as one of our kernels (`linalg_gemm_small_*`): `Y [M, N] =
//! act(alpha · A · Bᵀ + bias)` with B stored `[N, K]`, a warp per output element. For batch-1
//! Gemms and an LSTM's input projection this is a few µs where cuBLAS took 5–13 µs on an H200,
//! and a model whose products all fit never creates the cuBLAS handle (~0.1 s at load, more
//! at its first call). A Softmax over Y's rows can run in the same launch (`fold_softmax`), and
//! so can a second few-row product over Y (`fold_gemm`), run by the last block.

use cudarc::driver::{CudaFunction, DeviceRepr};

use crate::cuda::device::{arg, Device, DeviceBuffer};
use crate::cuda::ops::float_suffix;
use crate::tensor::DType;
use crate::Result;

/// Mirrors `SmallGemmParams` in `kernels/cuda/linalg.cu`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct SmallGemmParams {
    m: i32,
    n: i32,
    k: i32,
    lda: i32,
    inner: i32,
    channels: i32,
    act: i32,
    alpha: f32,
    p0: f32,
    p1: f32,
    softmax: i32,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for SmallGemmParams {}

/// Mirrors `SmallTail` in `kernels/cuda/linalg.cu`: a second product over Y, `n` 0 for none.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct SmallTail {
    /// `[n, N]` B2, its bias (or 0) and Y2 `[M, n]`: device addresses, set at launch.
    pub b: u64,
    pub bias: u64,
    pub y: u64,
    pub n: i32,
    pub inner: i32,
    pub channels: i32,
    pub act: i32,
    pub alpha: f32,
    pub p0: f32,
    pub p1: f32,
}

// SAFETY: plain `repr(C)` numbers and device addresses, the layout of the CUDA struct.
unsafe impl DeviceRepr for SmallTail {}

/// Most rows of A the kernel takes (each row re-reads B, from L2).
pub const MAX_ROWS: usize = 32;

/// Whether an `[m, k] · [k, n]` product suits the kernel (32-bit indices).
pub fn suits(m: usize, n: usize, k: usize) -> bool {
    // Threads (a warp per output) plus one grid-stride step (≤ 2^24) stay within an int.
    m <= MAX_ROWS && m * n * 32 < i32::MAX as usize - (1 << 24) && n * k < i32::MAX as usize
}

pub struct SmallGemm {
    f: CudaFunction,
    p: SmallGemmParams,
    /// With a Softmax or a second product folded in: the count of finished blocks (`linalg.cu`).
    counter: Option<DeviceBuffer>,
    /// The second product's sizes and epilogue (its addresses come at launch).
    tail: SmallTail,
}

impl SmallGemm {
    /// `bias`: (inner, channels) as `elementwise_bias_act`; `act` an activation code.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dev: &Device,
        dtype: DType,
        (m, n, k): (usize, usize, usize),
        lda: usize,
        alpha: f32,
        bias: Option<(i64, i64)>,
        (act, p0, p1): (i32, f32, f32),
    ) -> Result<SmallGemm> {
        let s = float_suffix(dtype)
            .ok_or_else(|| crate::Error::Unsupported(format!("small GEMM in {dtype}")))?;
        let (inner, channels) = bias.unwrap_or((1, 1));
        Ok(SmallGemm {
            f: dev.function(&format!("linalg_gemm_small_{s}"))?,
            p: SmallGemmParams {
                m: m as i32,
                n: n as i32,
                k: k as i32,
                lda: lda as i32,
                inner: inner as i32,
                channels: channels as i32,
                act,
                alpha,
                p0,
                p1,
                softmax: 0,
            },
            counter: None,
            tail: SmallTail::default(),
        })
    }

    /// Folds a Softmax (`log`: LogSoftmax) over each row of Y into the kernel.
    pub fn fold_softmax(&mut self, dev: &Device, log: bool) -> Result<()> {
        if self.counter.is_none() {
            self.counter = Some(DeviceBuffer::zeroed(dev, 4)?);
        }
        self.p.softmax = if log { 2 } else { 1 };
        Ok(())
    }

    /// Folds a second product `Y2 [M, n] = act(alpha · Y · B2ᵀ + bias2)` into the kernel (`n`,
    /// the bias's (inner, channels) and the activation in `tail`); a folded Softmax then runs on
    /// Y2. `run_tail` gives the addresses.
    pub fn fold_gemm(&mut self, dev: &Device, tail: SmallTail) -> Result<()> {
        if self.counter.is_none() {
            self.counter = Some(DeviceBuffer::zeroed(dev, 4)?);
        }
        self.tail = tail;
        Ok(())
    }

    /// Bytes of Y when a second product is folded in (then Y lives in scratch), else 0.
    pub fn mid_bytes(&self, dtype_size: usize) -> usize {
        if self.tail.n > 0 {
            (self.p.m * self.p.n) as usize * dtype_size
        } else {
            0
        }
    }

    /// Runs the product and the folded second one: Y into `y`, Y2 into `y2`.
    ///
    /// # Safety
    /// As [`Self::run`]; `b2` holds `[n, N]` and `bias2` (or 0) what its (inner, channels)
    /// index, `y2` `[M, n]`.
    pub unsafe fn run_tail(
        &self,
        dev: &Device,
        (a, b, bias, y): (u64, u64, u64, u64),
        (b2, bias2, y2): (u64, u64, u64),
    ) -> Result<()> {
        let tail = SmallTail {
            b: b2,
            bias: bias2,
            y: y2,
            ..self.tail
        };
        self.launch(dev, a, b, bias, y, tail)
    }

    /// Runs the product.
    ///
    /// # Safety
    /// `a` holds M rows `lda` apart of K elements, `b` `[N, K]`, `y` `[M, N]`, `bias` (or 0)
    /// what its (inner, channels) index, all in the dtype given to `new`.
    pub unsafe fn run(&self, dev: &Device, a: u64, b: u64, bias: u64, y: u64) -> Result<()> {
        self.launch(dev, a, b, bias, y, SmallTail::default())
    }

    /// # Safety
    /// As [`Self::run`] and [`Self::run_tail`].
    unsafe fn launch(
        &self,
        dev: &Device,
        a: u64,
        b: u64,
        bias: u64,
        y: u64,
        tail: SmallTail,
    ) -> Result<()> {
        let counter = self.counter.as_ref().map_or(0, |c| c.ptr);
        dev.launch(
            &self.f,
            (self.p.m * self.p.n) as usize * 32,
            &mut [
                arg(&a),
                arg(&b),
                arg(&bias),
                arg(&y),
                arg(&self.p),
                arg(&counter),
                arg(&tail),
            ],
        )
    }
}

/// `[K, N]` bytes of elements of `size` bytes transposed to `[N, K]`, on the device.
pub fn transposed(
    dev: &Device,
    data: &[u8],
    (k, n): (usize, usize),
    size: usize,
) -> Result<DeviceBuffer> {
    let mut t = vec![0u8; data.len()];
    for r in 0..k {
        for c in 0..n {
            let (src, dst) = ((r * n + c) * size, (c * k + r) * size);
            t[dst..dst + size].copy_from_slice(&data[src..src + size]);
        }
    }
    DeviceBuffer::from_bytes(dev, &t)
}

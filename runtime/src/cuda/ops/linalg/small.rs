//! Few-row matrix products as one of our kernels (`linalg_gemm_small_*`): `Y [M, N] =
//! act(alpha · A · Bᵀ + bias)` with B stored `[N, K]`, a warp per output element. For batch-1
//! Gemms and an LSTM's input projection this is a few µs where cuBLAS took 5–13 µs on an H200,
//! and a model whose products all fit never creates the cuBLAS handle (~0.1 s at load, more
//! at its first call). A Softmax over Y's rows can run in the same launch (`fold_softmax`).

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
    /// With a Softmax folded in: the count of finished blocks (`linalg.cu`).
    counter: Option<DeviceBuffer>,
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
        })
    }

    /// Folds a Softmax (`log`: LogSoftmax) over each row of Y into the kernel.
    pub fn fold_softmax(&mut self, dev: &Device, log: bool) -> Result<()> {
        self.counter = Some(DeviceBuffer::zeroed(dev, 4)?);
        self.p.softmax = if log { 2 } else { 1 };
        Ok(())
    }

    /// Runs the product.
    ///
    /// # Safety
    /// `a` holds M rows `lda` apart of K elements, `b` `[N, K]`, `y` `[M, N]`, `bias` (or 0)
    /// what its (inner, channels) index, all in the dtype given to `new`.
    pub unsafe fn run(&self, dev: &Device, a: u64, b: u64, bias: u64, y: u64) -> Result<()> {
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

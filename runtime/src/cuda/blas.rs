//! cuBLAS, row-major: `C[M,N] = alpha · op(A) · op(B) + beta · C` with A, B, C row-major
//! (computed as the column-major product Cᵀ = op(B)ᵀ · op(A)ᵀ). fp32 accumulates in fp32 with
//! TF32 off (`CUBLAS_COMPUTE_32F`, default math mode), so results match the CPU; fp16 uses
//! tensor cores with fp32 accumulation.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::sys as bs;
use cudarc::driver::{CudaContext, CudaStream};

use super::device::DeviceBuffer;
use crate::tensor::DType;
use crate::{Error, Result};

/// Workspace handed to cuBLAS so it never allocates during graph capture.
const WORKSPACE: usize = 32 << 20;

pub struct Blas {
    handle: bs::cublasHandle_t,
    _workspace: DeviceBuffer,
}

// SAFETY: the handle is used from one session at a time (the session owns its Device).
unsafe impl Send for Blas {}
// SAFETY: as above; calls are serialised by the session's &mut run.
unsafe impl Sync for Blas {}

fn check(what: &str, s: bs::cublasStatus_t) -> Result<()> {
    if s == bs::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(Error::Cuda(format!("{what}: {s:?}")))
    }
}

impl Blas {
    pub fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Result<Blas> {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { bs::is_culib_present() } {
            return Err(Error::Cuda("libcublas not found".into()));
        }
        ctx.bind_to_thread()
            .map_err(|e| Error::Cuda(format!("{e:?}")))?;
        // SAFETY: plain allocation, freed by DeviceBuffer's Drop after the handle is destroyed.
        let ptr = unsafe { cudarc::driver::result::malloc_sync(WORKSPACE) }
            .map_err(|e| Error::Cuda(format!("cuBLAS workspace: {e:?}")))?;
        let workspace = DeviceBuffer {
            ptr,
            len: WORKSPACE,
        };
        let mut handle = std::ptr::null_mut();
        // SAFETY: the library is present; `handle` is a valid out-pointer; the stream and the
        // workspace outlive the handle (Blas owns the workspace; Device owns Blas and the stream).
        unsafe {
            check("cublasCreate", bs::cublasCreate_v2(&mut handle))?;
            check(
                "cublasSetStream",
                bs::cublasSetStream_v2(handle, stream.cu_stream() as bs::cudaStream_t),
            )?;
            check(
                "cublasSetWorkspace",
                bs::cublasSetWorkspace_v2(handle, ptr as *mut c_void, WORKSPACE),
            )?;
            check(
                "cublasSetMathMode",
                bs::cublasSetMathMode(handle, bs::cublasMath_t::CUBLAS_DEFAULT_MATH),
            )?;
        }
        Ok(Blas {
            handle,
            _workspace: workspace,
        })
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { bs::cublasDestroy_v2(self.handle) };
    }
}

/// One row-major GEMM, possibly strided-batched (`batch` > 1, element strides per batch).
#[derive(Debug, Clone, Copy)]
pub struct Gemm {
    pub dtype: DType,
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub beta: f32,
    pub batch: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
}

impl Gemm {
    pub fn new(dtype: DType, trans_a: bool, trans_b: bool, m: usize, n: usize, k: usize) -> Gemm {
        Gemm {
            dtype,
            trans_a,
            trans_b,
            m,
            n,
            k,
            alpha: 1.0,
            beta: 0.0,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
            stride_c: 0,
        }
    }

    /// Whether cuBLAS can take these sizes (32-bit dimensions) and this dtype.
    pub fn check(&self) -> Result<()> {
        let big = [self.m, self.n, self.k, self.batch]
            .iter()
            .any(|&d| d > i32::MAX as usize);
        if big || !matches!(self.dtype, DType::F32 | DType::F16) {
            return Err(Error::Unsupported(format!(
                "cuBLAS GEMM of {} {}x{}x{}",
                self.dtype, self.m, self.n, self.k
            )));
        }
        Ok(())
    }

    /// Enqueues the product on the handle's stream. `a`, `b`, `c` are device addresses.
    ///
    /// # Safety
    /// The buffers must hold the matrices the sizes describe, in `dtype`.
    pub unsafe fn run(&self, blas: &Blas, a: u64, b: u64, c: u64) -> Result<()> {
        let ty = match self.dtype {
            DType::F16 => bs::cudaDataType_t::CUDA_R_16F,
            _ => bs::cudaDataType_t::CUDA_R_32F,
        };
        let op = |t: bool| {
            if t {
                bs::cublasOperation_t::CUBLAS_OP_T
            } else {
                bs::cublasOperation_t::CUBLAS_OP_N
            }
        };
        // Row-major A [M,K] is column-major Aᵀ with ld K; transposed A [K,M] has ld M.
        let lda = if self.trans_a { self.m } else { self.k } as i32;
        let ldb = if self.trans_b { self.k } else { self.n } as i32;
        let ldc = self.n as i32;
        let (alpha, beta) = (self.alpha, self.beta);
        let compute = bs::cublasComputeType_t::CUBLAS_COMPUTE_32F;
        let algo = bs::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT;
        let status = if self.batch <= 1 {
            bs::cublasGemmEx(
                blas.handle,
                op(self.trans_b),
                op(self.trans_a),
                self.n as i32,
                self.m as i32,
                self.k as i32,
                &alpha as *const f32 as *const c_void,
                b as *const c_void,
                ty,
                ldb,
                a as *const c_void,
                ty,
                lda,
                &beta as *const f32 as *const c_void,
                c as *mut c_void,
                ty,
                ldc,
                compute,
                algo,
            )
        } else {
            bs::cublasGemmStridedBatchedEx(
                blas.handle,
                op(self.trans_b),
                op(self.trans_a),
                self.n as i32,
                self.m as i32,
                self.k as i32,
                &alpha as *const f32 as *const c_void,
                b as *const c_void,
                ty,
                ldb,
                self.stride_b as i64,
                a as *const c_void,
                ty,
                lda,
                self.stride_a as i64,
                &beta as *const f32 as *const c_void,
                c as *mut c_void,
                ty,
                ldc,
                self.stride_c as i64,
                self.batch as i32,
                compute,
                algo,
            )
        };
        check("cublasGemmEx", status)
    }
}

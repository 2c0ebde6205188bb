//! Data-movement CUDA kernels (`kernels/cuda/shape.cu`). Transpose, Slice, Concat, Split and
//! Expand are one strided copy each ([`StridedCopy`]); Pad and Gather have their own kernels.
//! They move bits, so any dtype works (kernels are chosen by element size). Reshape is a view.

pub mod concat;
pub mod expand;
pub mod gather;
pub mod pad;
pub mod slice;
pub mod split;
pub mod transpose;

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{check_rank, size_suffix, Dims, Support};
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

/// Ranks the strided kernels take.
pub fn supports_ranks(facts: &[Fact]) -> Support {
    facts.iter().try_for_each(|f| check_rank(f.rank()))
}

/// `dst[dst_base + Σ c·ds] = src[src_base + Σ c·ss]` for every index `c` of `dims` (elements).
pub struct StridedCopy {
    f: CudaFunction,
    n: i64,
    rank: i32,
    dims: Dims,
    ss: Dims,
    ds: Dims,
    src_base: i64,
    dst_base: i64,
}

impl StridedCopy {
    pub fn new(
        dev: &Device,
        dtype: DType,
        dims: &[usize],
        ss: &[i64],
        ds: &[i64],
        src_base: i64,
        dst_base: i64,
    ) -> Result<StridedCopy> {
        Ok(StridedCopy {
            f: dev.function(&format!("shape_strided_copy_{}", size_suffix(dtype)))?,
            n: dims.iter().product::<usize>() as i64,
            rank: dims.len() as i32,
            dims: Dims::from(dims.iter().map(|&d| d as i64)),
            ss: Dims::from(ss.iter().copied()),
            ds: Dims::from(ds.iter().copied()),
            src_base,
            dst_base,
        })
    }

    /// # Safety
    /// `src` and `dst` must cover every element the strides reach.
    pub unsafe fn launch(&self, dev: &Device, src: u64, dst: u64) -> Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        // SAFETY (caller): (const T* src, T* dst, i64 n, int rank, Dims dims, Dims ss, Dims ds,
        // i64 src_base, i64 dst_base).
        dev.launch(
            &self.f,
            self.n as usize,
            &mut [
                arg(&src),
                arg(&dst),
                arg(&self.n),
                arg(&self.rank),
                arg(&self.dims),
                arg(&self.ss),
                arg(&self.ds),
                arg(&self.src_base),
                arg(&self.dst_base),
            ],
        )
    }
}

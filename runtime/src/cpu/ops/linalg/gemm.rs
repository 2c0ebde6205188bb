//! CPU kernel for Gemm.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Gemm;
use crate::Result;

pub fn build(_op: &Gemm, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Gemm")
}

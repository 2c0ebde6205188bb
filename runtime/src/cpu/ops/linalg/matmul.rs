//! CPU kernel for MatMul.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::MatMul;
use crate::Result;

pub fn build(_op: &MatMul, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("MatMul")
}

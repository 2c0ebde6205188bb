//! CPU kernel for Transpose.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Transpose;
use crate::Result;

pub fn build(_op: &Transpose, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Transpose")
}

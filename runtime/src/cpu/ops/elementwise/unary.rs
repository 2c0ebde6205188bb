//! CPU kernel for Unary.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Unary;
use crate::Result;

pub fn build(_op: &Unary, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Unary")
}

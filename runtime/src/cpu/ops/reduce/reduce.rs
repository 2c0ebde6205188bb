//! CPU kernel for Reduce.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Reduce;
use crate::Result;

pub fn build(_op: &Reduce, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Reduce")
}

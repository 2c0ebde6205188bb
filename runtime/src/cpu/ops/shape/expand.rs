//! CPU kernel for Expand.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Expand;
use crate::Result;

pub fn build(_op: &Expand, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Expand")
}

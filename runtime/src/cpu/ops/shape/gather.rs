//! CPU kernel for Gather.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Gather;
use crate::Result;

pub fn build(_op: &Gather, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Gather")
}

//! CPU kernel for Resize.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Resize;
use crate::Result;

pub fn build(_op: &Resize, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Resize")
}

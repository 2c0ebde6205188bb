//! CPU kernel for Pad.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Pad;
use crate::Result;

pub fn build(_op: &Pad, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Pad")
}

//! CPU kernel for Slice.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Slice;
use crate::Result;

pub fn build(_op: &Slice, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Slice")
}

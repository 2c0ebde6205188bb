//! CPU kernel for Concat.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Concat;
use crate::Result;

pub fn build(_op: &Concat, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Concat")
}

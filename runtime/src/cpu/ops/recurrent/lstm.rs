//! CPU kernel for Lstm.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Lstm;
use crate::Result;

pub fn build(_op: &Lstm, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Lstm")
}

//! CPU kernel for GlobalPool.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::GlobalPool;
use crate::Result;

pub fn build(_op: &GlobalPool, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("GlobalPool")
}

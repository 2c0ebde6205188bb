//! CPU kernel for Pool.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Pool;
use crate::Result;

pub fn build(_op: &Pool, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Pool")
}

//! CPU kernel for BatchNorm.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::BatchNorm;
use crate::Result;

pub fn build(_op: &BatchNorm, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("BatchNorm")
}

//! CPU kernel for Conv.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Conv;
use crate::Result;

pub fn build(_op: &Conv, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Conv")
}

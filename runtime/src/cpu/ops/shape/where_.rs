//! CPU kernel for Where.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Where;
use crate::Result;

pub fn build(_op: &Where, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Where")
}

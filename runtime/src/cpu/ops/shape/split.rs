//! CPU kernel for Split.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Split;
use crate::Result;

pub fn build(_op: &Split, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Split")
}

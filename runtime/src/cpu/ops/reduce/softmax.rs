//! CPU kernel for Softmax.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Softmax;
use crate::Result;

pub fn build(_op: &Softmax, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Softmax")
}

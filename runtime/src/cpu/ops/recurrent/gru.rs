//! CPU kernel for Gru.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Gru;
use crate::Result;

pub fn build(_op: &Gru, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Gru")
}

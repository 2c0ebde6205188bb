//! CPU kernel for ConvTranspose.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::ConvTranspose;
use crate::Result;

pub fn build(_op: &ConvTranspose, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("ConvTranspose")
}

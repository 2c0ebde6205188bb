//! CPU kernel for Cast.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Cast;
use crate::Result;

pub fn build(_op: &Cast, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Cast")
}

//! CPU kernel for Binary.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Binary;
use crate::Result;

pub fn build(_op: &Binary, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("Binary")
}

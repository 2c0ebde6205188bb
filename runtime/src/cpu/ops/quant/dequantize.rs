//! CPU kernel for DequantizeLinear.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::DequantizeLinear;
use crate::Result;

pub fn build(_op: &DequantizeLinear, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("DequantizeLinear")
}

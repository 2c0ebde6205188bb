//! CPU kernel for QuantizeLinear.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::QuantizeLinear;
use crate::Result;

pub fn build(_op: &QuantizeLinear, _b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    unsupported("QuantizeLinear")
}

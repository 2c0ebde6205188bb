//! CPU kernel for Reshape: a view. The planner aliases the output to the input's bytes.

use crate::cpu::ops::{BuildCtx, CpuKernel, NoOp};
use crate::Result;

pub fn build(_b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    Ok(Box::new(NoOp))
}

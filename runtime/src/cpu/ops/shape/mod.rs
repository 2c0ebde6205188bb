//! CPU kernels of the shape family. Slice, Transpose and Expand are one strided copy each
//! ([`StridedCopy`], planned at build).

pub mod cast;
pub mod concat;
pub mod expand;
pub mod gather;
pub mod gather_elements;
pub mod pad;
pub mod reshape;
pub mod resize;
pub mod slice;
pub mod split;
pub mod transpose;
pub mod where_;

use edgefuse_kernels::movement::copy_strided;
use edgefuse_kernels::strided::Strided;

use crate::cpu::ops::{CpuKernel, Ctx};
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

/// Input 0 copied into the (contiguous) output through a planned strided layout: operand 0 is
/// the output, operand 1 the input from element `base`. Any dtype (elements move as bytes).
pub(crate) struct StridedCopy {
    pub layout: Strided<2>,
    pub base: isize,
    pub elsize: usize,
}

impl CpuKernel for StridedCopy {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        copy_strided(
            &self.layout,
            self.elsize,
            outputs[0].data,
            inputs[0].data,
            self.base,
        );
        Ok(())
    }
}

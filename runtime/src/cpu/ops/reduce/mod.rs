//! CPU kernels of the reduce family.

pub mod reduce;
pub mod softmax;

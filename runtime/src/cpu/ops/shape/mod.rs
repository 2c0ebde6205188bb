//! CPU kernels of the shape family.

pub mod cast;
pub mod concat;
pub mod expand;
pub mod gather;
pub mod pad;
pub mod reshape;
pub mod resize;
pub mod slice;
pub mod split;
pub mod transpose;
pub mod where_;

//! CPU kernels of the elementwise family.

pub mod binary;
pub mod unary;

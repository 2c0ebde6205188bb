//! CPU kernels of the nn family.

pub mod batchnorm;
pub mod conv;
pub mod conv_transpose;
pub mod global_pool;
pub mod pool;

//! CPU kernels of the linalg family.

pub mod gemm;
pub mod matmul;

//! edgefuse-kernels: the compute kernels, free of any graph or file-format knowledge.
//!
//! Slices in, slices out; shapes as plain integers. The runtime's CPU ops call these.
//! CUDA C sources live in `kernels/cuda/` and are embedded by the CUDA backend.
//!
//! Boundary: depends on nothing heavier than a GEMM library.

pub mod activation;
pub mod conv;
pub mod cuda;
mod disjoint;
pub mod gemm;
pub mod movement;
pub mod pool;
pub mod qgemm;
pub mod rnn;
pub mod strided;
pub mod vmath;

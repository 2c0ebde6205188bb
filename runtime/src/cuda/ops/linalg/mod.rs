//! GEMM and MatMul through cuBLAS (`cuda::blas`), with our fused bias + activation epilogue.

pub mod gemm;
pub mod matmul;

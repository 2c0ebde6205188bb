//! GEMM and MatMul through cuBLAS (`cuda::blas`), with our fused bias + activation epilogue;
//! few-row products (batch-1 Gemms, an LSTM's input projection) through our `small` kernel.

pub mod gemm;
pub mod matmul;
pub mod small;

//! Element-wise CUDA kernels (`kernels/cuda/elementwise.cu`): unary activations, broadcasting
//! binary arithmetic. Comparisons and integer arithmetic stay on the CPU.

pub mod binary;
pub mod unary;

//! Element-wise CUDA kernels (`kernels/cuda/elementwise.cu`): unary activations, broadcasting
//! binary arithmetic, f32 <-> f16 casts. Comparisons and integer arithmetic stay on the CPU.

pub mod binary;
pub mod cast;
pub mod unary;

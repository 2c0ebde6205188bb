//! Reduction CUDA kernels (`kernels/cuda/reduce.cu`): Softmax and LogSoftmax. The other
//! reductions (ReduceMean, …) stay on the CPU.

pub mod softmax;

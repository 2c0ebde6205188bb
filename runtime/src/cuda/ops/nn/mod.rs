//! NN CUDA kernels: Conv through cuDNN (`cuda::dnn`), pooling as our kernels
//! (`kernels/cuda/nn.cu`). ConvTranspose and BatchNorm (folded by the compiler) stay on the CPU.

pub mod conv;
pub mod global_pool;
pub mod pool;

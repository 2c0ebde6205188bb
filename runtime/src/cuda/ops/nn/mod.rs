//! NN CUDA kernels: Conv through cuDNN (`cuda::dnn`) or, for depthwise and small layers,
//! our direct kernel (`conv_direct`); pooling as our kernels
//! (`kernels/cuda/nn.cu`). ConvTranspose and BatchNorm (folded by the compiler) stay on the CPU.

pub mod conv;
pub mod conv_direct;
pub mod global_pool;
pub mod pool;

//! NN CUDA kernels: Conv through cuDNN (`cuda::dnn`), or our tiled kernel for pointwise layers
//! (`conv_pointwise`) and our direct kernel for depthwise and small ones (`conv_direct`); pooling as our kernels
//! (`kernels/cuda/nn.cu`). ConvTranspose and BatchNorm (folded by the compiler) stay on the CPU.

pub mod conv;
pub mod conv_direct;
pub mod conv_pointwise;
pub mod global_pool;
pub mod pool;

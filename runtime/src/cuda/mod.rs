//! The CUDA backend (feature `cuda`): the same plan as the CPU backend, executed on a GPU.
//!
//! [`device`] opens the GPU and loads CUDA at run time (nothing is linked: a build with this
//! feature runs on machines without CUDA, where [`probe`] says why there is no GPU);
//! [`nvrtc`] compiles `kernels/cuda/*.cu` for the device's arch, cached on disk; [`blas`] and
//! [`dnn`] wrap cuBLAS and cuDNN ([`dnn_choices`] keeps cuDNN's algorithm choices on disk); [`ops`] mirrors `cpu::ops`, one file per op; [`placement`]
//! says which nodes have CUDA kernels (no GPU needed); [`precision`] lowers a graph to fp16
//! (f16 activations and weights, casts at the edges; no GPU needed) and [`fuse`] lets a kernel
//! run its only reader (Conv → MaxPool, Gemm → Softmax); [`preprocess`] runs camera
//! preprocessing as one kernel; [`CudaSession`] uploads the weights once,
//! captures the plan as CUDA graphs and replays them, running unsupported nodes on the CPU with
//! explicit copies.

pub mod blas;
pub mod carry;
pub mod device;
pub mod dnn;
pub mod dnn_choices;
pub mod fuse;
pub mod nvrtc;
pub mod ops;
pub mod placement;
pub mod precision;
pub mod preprocess;
pub mod session;

pub use device::{driver_present, probe, DeviceInfo};
pub use placement::{placements, Placement};
pub use precision::Precision;
pub use session::{CudaOptions, CudaSession};

//! edgefuse-runtime: everything a field device needs to execute a compiled model.
//!
//! - [`ir`]: the graph the compiler emits and the runtime executes (ops, tensors, shapes).
//! - [`format`]: the `.efm` container (header, checksummed sections, 64-byte-aligned weights, mmap).
//! - [`tensor`]: owned tensors and borrowed views used at the API boundary and while folding.
//! - [`board`]: board profiles (`boards/*.toml`, built in).
//! - [`cpu`]: the CPU backend: a static plan, one arena, one kernel per node.
//! - [`capture`]: frame sources (V4L2 behind feature `v4l`, image files and folders, raw frame
//!   files, synthetic) and a capture thread; [`preprocess`]: frame → model input in one fused
//!   step, per the spec in the `.efm`; [`classify`]: both around a session, with top-K.
//! - `cuda` (feature `cuda`): the CUDA backend: the same plan on a GPU, CUDA graphs, CPU fallback.
//! - [`engine`]: picks a backend (`auto`, `cpu`, `cuda`) and runs either behind one type.
//! - `deploy` (feature `deploy`): signed bundles, the A/B slot store and agent, `ActiveModel`.
//!
//! Boundary: this crate never depends on the compiler or on tract; the device binary links it alone.

pub mod board;
pub mod capture;
pub mod classify;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "deploy")]
pub mod deploy;
pub mod engine;
pub mod error;
pub mod format;
pub mod ir;
pub mod model;
pub mod preprocess;
pub mod tensor;
#[cfg(test)]
pub(crate) mod testing;

pub use error::{Error, Result};
pub use model::Model;
pub use tensor::{DType, Tensor};

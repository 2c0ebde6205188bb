//! edgefuse-compiler: ONNX → IR → passes → `.efm`.
//!
//! - [`onnx`]: import with tract-onnx's protobuf parser; static shapes; shape subgraphs folded.
//! - [`module`]: the graph under compilation with its constants.
//!
//! Boundary: may depend on the runtime (to evaluate while folding and calibrating) and on tract;
//! nothing on the device side depends on this crate.

pub mod module;
pub mod onnx;

pub use module::Module;

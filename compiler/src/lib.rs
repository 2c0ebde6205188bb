//! edgefuse-compiler: ONNX → IR → passes → `.efm`.
//!
//! - [`onnx`]: import with tract-onnx's protobuf parser; static shapes; shape subgraphs folded.
//! - [`module`]: the graph under compilation with its constants.
//! - [`passes`]: named rewrite rules (fusion, folding) applied to a fixed point.
//! - [`compile`]: the driver the CLI calls.
//!
//! Boundary: may depend on the runtime (to evaluate while folding and calibrating) and on tract;
//! nothing on the device side depends on this crate.

pub mod compile;
pub mod module;
pub mod onnx;
pub mod passes;

pub use compile::{compile_onnx, CompileOptions, CompileReport, Precision};
pub use module::Module;

//! edgefuse-compiler: ONNX → IR → passes → `.efm`.
//!
//! - [`onnx`]: import with tract-onnx's protobuf parser; static shapes; shape subgraphs folded.
//! - [`module`]: the graph under compilation with its constants.
//! - [`passes`]: named rewrite rules (fusion, folding) applied to a fixed point.
//! - [`fp16`]: half-precision weight storage (`--precision fp16`).
//! - [`quant`]: int8 post-training quantization: calibration, QDQ insertion, accuracy guard, report.
//! - [`compile`]: the driver the CLI calls.
//!
//! Boundary: may depend on the runtime (to evaluate while folding and calibrating) and on tract;
//! nothing on the device side depends on this crate.

pub mod compile;
pub mod fp16;
pub mod module;
pub mod onnx;
pub mod passes;
pub mod quant;

pub use compile::{compile_module, compile_onnx, CompileOptions, CompileReport, Precision};
pub use module::Module;

//! ONNX import: protobuf → [`Module`] with static shapes, in one pass over the nodes.
//!
//! The model is parsed with tract-onnx's protobuf types only (tract's own model building would turn
//! LSTM into Scan). Each ONNX op type maps to an importer through the [`Registry`] filled by the
//! per-family `register` functions in [`ops`]. Importers emit IR ops through [`NodeCtx::emit`],
//! which folds an op whose inputs are all constants, so the shape subgraphs exporters write
//! (Shape → Gather → Concat → Reshape, "same" padding arithmetic) become constants that later ops
//! read into their static attributes.
//!
//! Boundary: everything ONNX-specific lives here; the output is a plain IR [`Module`].

mod attr;
mod context;
mod graph;
mod inputs;
pub mod ops;
pub(crate) mod prune;
mod qoperator;
mod registry;
mod tensor;

use std::path::Path;

use anyhow::{Context, Result};
use tract_onnx::prelude::*;

use crate::Module;

pub use context::{eval, NodeCtx};
pub use prune::{prune, validate_module};
pub use registry::{ImportFn, Registry};
pub use tensor::{dtype_from_onnx, tensor_from_proto};

/// Lowest and highest opset of the default domain the importer reads.
pub const MIN_OPSET: i64 = 11;
pub const MAX_OPSET: i64 = 21;

/// Imports an ONNX file into a [`Module`] with static shapes.
///
/// `input_shapes` gives shapes for graph inputs whose dimensions are symbolic or unknown, e.g.
/// `[("input1", vec![1, 1, 64, 160])]`; an unresolved leading (batch) dimension defaults to 1.
pub fn import_onnx(path: &Path, input_shapes: &[(String, Vec<usize>)]) -> Result<Module> {
    let proto = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| anyhow::anyhow!("{}: not a readable ONNX model: {e:#}", path.display()))?;
    import_proto(&proto, input_shapes).with_context(|| format!("importing {}", path.display()))
}

/// Imports an already parsed ONNX model (see [`import_onnx`]).
pub fn import_proto(
    proto: &tract_onnx::pb::ModelProto,
    input_shapes: &[(String, Vec<usize>)],
) -> Result<Module> {
    let module = graph::import_model(proto, input_shapes)?;
    let module = prune::prune(module);
    validate_module(&module)
        .map_err(|e| anyhow::anyhow!("the imported graph is inconsistent: {e}"))?;
    Ok(module)
}

//! ONNX op importers, one folder per family mirroring the IR's families; each family's
//! `register` adds its `(op_type, importer)` pairs to the [`Registry`].

pub mod elementwise;
pub mod linalg;
pub mod misc;
pub mod nn;
pub mod norm;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod shape;

use super::Registry;

/// Fills `reg` with every supported op.
pub fn register_all(reg: &mut Registry) {
    elementwise::register(reg);
    linalg::register(reg);
    misc::register(reg);
    nn::register(reg);
    norm::register(reg);
    quant::register(reg);
    recurrent::register(reg);
    reduce::register(reg);
    shape::register(reg);
}

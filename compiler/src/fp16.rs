//! `--precision fp16`: weights stored in half precision.
//!
//! The graph keeps every tensor's f32 type; only the bytes of the weights change. The `.efm`
//! writer records such constants as stored in f16 (`WeightRef::stored`) and the loader widens them
//! to f32 once, so every kernel still computes in f32 and the file holds half the weight bytes.

use edgefuse_runtime::ir::Op;
use edgefuse_runtime::{DType, Tensor};

use crate::Module;

/// Constants smaller than this stay f32: they save nothing worth the rounding.
const MIN_ELEMENTS: usize = 64;

/// Whether a constant read at input `pos` of `op` is a weight that f16 storage applies to.
fn is_weight_input(op: &Op, pos: usize) -> bool {
    match op {
        Op::Conv(_) | Op::ConvTranspose(_) | Op::Gemm(_) | Op::MatMul(_) => true,
        Op::Lstm(_) | Op::Gru(_) => true,
        Op::Gather(_) => pos == 0,
        _ => false,
    }
}

/// The module's constants with the f32 weights of Conv/Gemm/MatMul/LSTM/GRU/Gather (at least
/// [`MIN_ELEMENTS`], every value finite in f16) converted to f16; every other constant as is.
/// Returns the constants and how many were converted.
pub fn half_weights(m: &Module) -> (Vec<Option<Tensor>>, usize) {
    let mut weight = vec![false; m.graph.tensors.len()];
    for node in &m.graph.nodes {
        for (pos, &i) in node.inputs.iter().enumerate() {
            if is_weight_input(&node.op, pos) {
                weight[i] = true;
            }
        }
    }
    let mut converted = 0;
    let consts = m
        .consts
        .iter()
        .enumerate()
        .map(|(id, c)| {
            let c = c.as_ref()?;
            if !weight[id] || c.dtype != DType::F32 || c.len() < MIN_ELEMENTS {
                return Some(c.clone());
            }
            let v = c.as_slice::<f32>().ok()?;
            let h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
            if h.iter()
                .zip(v)
                .any(|(h, x)| !h.is_finite() && x.is_finite())
            {
                return Some(c.clone());
            }
            converted += 1;
            Tensor::from_vec(&c.shape, h).ok()
        })
        .collect();
    (consts, converted)
}

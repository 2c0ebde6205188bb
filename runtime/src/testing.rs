//! What the crate's unit tests share: graphs written by hand, deterministic values, models
//! built in memory.

use std::sync::Arc;

use crate::format::{write, Meta};
use crate::ir::{Graph, Node, Op, TensorInfo};
use crate::{DType, Model, Tensor};

/// An f32 tensor without data or quantization.
pub(crate) fn info(name: &str, shape: &[usize]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dtype: DType::F32,
        shape: shape.to_vec(),
        weight: None,
        quant: None,
    }
}

pub(crate) fn node(name: &str, op: Op, inputs: &[usize], outputs: &[usize]) -> Node {
    Node {
        name: name.into(),
        op,
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
    }
}

/// Deterministic values in [-1, 1).
pub(crate) fn values(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// `graph` written as a `.efm` with `consts[i]` as tensor i's data, and loaded back.
pub(crate) fn model(graph: Graph, consts: &[Option<Tensor>]) -> Arc<Model> {
    let refs: Vec<Option<&Tensor>> = consts.iter().map(Option::as_ref).collect();
    let meta = Meta {
        graph,
        ..Default::default()
    };
    Model::from_bytes(&write(meta, &refs).unwrap()).unwrap()
}

//! Which ops get quantized, and the QuantizeLinear/DequantizeLinear pattern that says so.
//!
//! The output is the standard ONNX QDQ form (what a pre-quantized model imports as): each
//! quantized activation `t` becomes `t → Q → DQ → readers` (u8, asymmetric, per tensor), each
//! quantized weight an i8 constant (symmetric, zero point 0, per output channel) read through a
//! per-channel DQ; biases stay f32. The int8 execution rules fold these patterns into int8 ops;
//! without them the graph still runs, in float, with the quantization error already in it.
//!
//! Layers: Conv, Gemm and MatMul with constant weights quantize weights and activations; LSTM/GRU
//! (W and R) and Gather tables (embeddings) quantize weights only, their state stays float.
//! Add, Concat, pooling, Reshape and Transpose between quantized ops are quantized as ORT's QDQ
//! quantizer does, so int8 flows through them; Reshape, Transpose and MaxPool keep their input's
//! scale.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use edgefuse_runtime::ir::ops::{BinaryOp, DequantizeLinear, PoolKind, QuantizeLinear};
use edgefuse_runtime::ir::{Node, Op, TensorId};
use edgefuse_runtime::{DType, Tensor};
use serde::Serialize;

use super::calibrate::u8_params;
use crate::Module;

/// What quantizing a layer means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// int8 weights and u8 activations in and out.
    Full,
    /// int8 weights; activations and state stay float.
    WeightOnly,
}

/// A quantizable node, identified by its first output's name (unique in a graph).
#[derive(Debug, Clone)]
pub struct Layer {
    pub key: String,
    pub name: String,
    pub op: &'static str,
    pub kind: Kind,
    /// (input position, per-channel axis) of each constant weight.
    pub weights: Vec<(usize, usize)>,
}

/// Debugging switches for comparing variants, from `EDGEFUSE_QUANT_DEBUG` (comma-separated):
/// `weights` / `acts` (quantize only those), `nobc` (no bias correction), `nomse` (plain
/// max|w| weight scales), `addf` (residual Adds in float), `ranges` (print calibrated ranges).
pub fn debug(flag: &str) -> bool {
    std::env::var("EDGEFUSE_QUANT_DEBUG").is_ok_and(|d| d.split(',').any(|f| f == flag))
}

fn const_f32(m: &Module, id: TensorId) -> bool {
    m.is_const(id) && m.graph.tensors[id].dtype == DType::F32
}

/// The quantizable layers of `m`, in graph order.
pub fn find_layers(m: &Module) -> Vec<Layer> {
    let g = &m.graph;
    let mut out = Vec::new();
    for node in &g.nodes {
        let inp = |k: usize| node.inputs.get(k).copied();
        let rank = |k: usize| inp(k).map_or(0, |i| g.tensors[i].shape.len());
        let w = |k: usize| inp(k).is_some_and(|i| const_f32(m, i));
        let x_float = inp(0).is_some_and(|i| !m.is_const(i) && g.tensors[i].dtype == DType::F32);
        let (kind, weights) = match &node.op {
            Op::Conv(_) if x_float && w(1) => (Kind::Full, vec![(1, 0)]),
            Op::Gemm(gm) if x_float && w(1) && rank(1) == 2 => {
                (Kind::Full, vec![(1, if gm.trans_b { 0 } else { 1 })])
            }
            Op::MatMul(_) if x_float && w(1) && rank(1) >= 2 => {
                (Kind::Full, vec![(1, rank(1) - 1)])
            }
            Op::Lstm(_) | Op::Gru(_) if w(1) && w(2) => (Kind::WeightOnly, vec![(1, 1), (2, 1)]),
            Op::Gather(_) if w(0) && rank(0) >= 2 => (Kind::WeightOnly, vec![(0, 0)]),
            _ => continue,
        };
        out.push(Layer {
            key: g.tensors[node.outputs[0]].name.clone(),
            name: node.name.clone(),
            op: node.op.name(),
            kind,
            weights,
        });
    }
    out
}

/// Ops that carry int8 between quantized layers (as ORT's QDQ quantizer does). Leaving the
/// residual Add in float (`EDGEFUSE_QUANT_DEBUG=addf`) measured worse on EfficientNet-Lite0
/// (91.4 % vs 94.3 % top-1 agreement with fp32).
fn pass_through(op: &Op) -> bool {
    matches!(
        op,
        Op::Binary(b) if b.op == BinaryOp::Add && !debug("addf")
    ) || matches!(
        op,
        Op::Concat(_) | Op::Pool(_) | Op::GlobalPool(_) | Op::Reshape(_) | Op::Transpose(_)
    )
}

/// Ops whose output keeps the input's scale and zero point.
fn keeps_scale(op: &Op) -> bool {
    matches!(op, Op::Reshape(_) | Op::Transpose(_))
        || matches!(op, Op::Pool(p) if p.kind == PoolKind::Max)
}

/// The activation tensors to quantize when the layers in `enabled` (keys) are quantized, in
/// graph order, and the (input, output) pairs that must share parameters.
pub fn activations(
    m: &Module,
    layers: &[Layer],
    enabled: &HashSet<String>,
) -> (Vec<TensorId>, Vec<(TensorId, TensorId)>) {
    let g = &m.graph;
    let full: HashSet<&str> = layers
        .iter()
        .filter(|l| l.kind == Kind::Full && enabled.contains(&l.key))
        .map(|l| l.key.as_str())
        .collect();
    let float_values = |node: &Node| -> Vec<TensorId> {
        node.inputs
            .iter()
            .copied()
            .filter(|&i| !m.is_const(i) && g.tensors[i].dtype == DType::F32)
            .collect()
    };
    let mut producer = vec![None; g.tensors.len()];
    for (k, n) in g.nodes.iter().enumerate() {
        for &o in &n.outputs {
            producer[o] = Some(k);
        }
    }
    let anchor: Vec<bool> = g
        .nodes
        .iter()
        .map(|n| full.contains(g.tensors[n.outputs[0]].name.as_str()))
        .collect();
    // Forward: a pass-through op is quantized when all its float inputs come from quantized ops.
    let mut q = anchor.clone();
    for (k, n) in g.nodes.iter().enumerate() {
        if pass_through(&n.op) {
            let ins = float_values(n);
            q[k] = !ins.is_empty()
                && ins.iter().all(|&i| {
                    producer[i].is_some_and(|p| q[p]) && g.tensors[i].dtype == DType::F32
                });
        }
    }
    // Backward: ... and when some reader of its output is quantized.
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); g.tensors.len()];
    for (k, n) in g.nodes.iter().enumerate() {
        for &i in &n.inputs {
            readers[i].push(k);
        }
    }
    for k in (0..g.nodes.len()).rev() {
        if q[k] && !anchor[k] {
            q[k] = g.nodes[k]
                .outputs
                .iter()
                .any(|&o| readers[o].iter().any(|&r| q[r]));
        }
    }
    let mut marked = vec![false; g.tensors.len()];
    let mut shared = Vec::new();
    for (k, n) in g.nodes.iter().enumerate() {
        if !q[k] {
            continue;
        }
        if anchor[k] {
            marked[n.inputs[0]] = true;
        } else {
            for i in float_values(n) {
                marked[i] = true;
            }
            if keeps_scale(&n.op) {
                shared.push((n.inputs[0], n.outputs[0]));
            }
        }
    }
    let mut order = Vec::new();
    for &i in &g.inputs {
        if marked[i] {
            order.push(i);
        }
    }
    for n in &g.nodes {
        for &o in &n.outputs {
            if marked[o] {
                order.push(o);
            }
        }
    }
    shared.retain(|&(_, o)| marked[o]);
    (order, shared)
}

/// A per-channel symmetric int8 weight: values, scales, and the SQNR (dB) of the rounding.
pub fn quantize_weight(w: &Tensor, axis: usize) -> Result<(Tensor, Vec<f32>, f64)> {
    let v = w.as_slice::<f32>()?;
    let channels = w.shape[axis];
    let inner: usize = w.shape[axis + 1..].iter().product();
    let chan = |i: usize| (i / inner) % channels;
    let mut amax = vec![0f32; channels];
    for (i, &x) in v.iter().enumerate() {
        let c = chan(i);
        amax[c] = amax[c].max(x.abs());
    }
    // Per channel, the scale (max|w|/127, or up to 30 % smaller, clipping outliers) with the
    // least squared rounding error.
    let mut per_chan: Vec<Vec<f32>> = vec![Vec::new(); channels];
    for (i, &x) in v.iter().enumerate() {
        per_chan[chan(i)].push(x);
    }
    let scale: Vec<f32> = amax
        .iter()
        .zip(&per_chan)
        .map(|(&a, xs)| {
            if !(a > 0.0 && a.is_finite()) {
                return 1.0;
            }
            let err = |s: f32| -> f64 {
                xs.iter()
                    .map(|&x| {
                        let r = (x / s).round_ties_even().clamp(-127.0, 127.0) * s;
                        ((x - r) as f64).powi(2)
                    })
                    .sum()
            };
            let steps = if debug("nomse") { 1 } else { 16 };
            (0..steps)
                .map(|k| a * (1.0 - 0.02 * k as f32) / 127.0)
                .map(|s| (err(s), s))
                .fold(
                    (f64::INFINITY, a / 127.0),
                    |b, c| if c.0 < b.0 { c } else { b },
                )
                .1
        })
        .collect();
    let (mut sig, mut err) = (0f64, 0f64);
    let q: Vec<i8> = v
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let s = scale[chan(i)];
            let r = (x / s).round_ties_even().clamp(-127.0, 127.0);
            sig += (x as f64).powi(2);
            err += (x as f64 - (r * s) as f64).powi(2);
            r as i8
        })
        .collect();
    Ok((Tensor::from_vec(&w.shape, q)?, scale, sqnr_db(sig, err)))
}

/// Bias correction for node `k` (see [`super::bias`]) when its input's channel means are known
/// and its bias is an f32 constant with one value per output channel.
#[allow(clippy::too_many_arguments)]
fn correct_bias(
    out: &mut Module,
    orig: &Module,
    k: usize,
    w: &Tensor,
    q: &Tensor,
    scale: &[f32],
    axis: usize,
    means: &HashMap<String, Vec<f64>>,
) -> Result<()> {
    if debug("nobc") {
        return Ok(());
    }
    let node = &orig.graph.nodes[k];
    let Some(mean) = means.get(&orig.graph.tensors[node.inputs[0]].name) else {
        return Ok(());
    };
    let Some(&b) = out.graph.nodes[k].inputs.get(2) else {
        return Ok(());
    };
    let Some(bias) = out.consts[b].clone().filter(|t| t.dtype == DType::F32) else {
        return Ok(());
    };
    let inner: usize = w.shape[axis + 1..].iter().product();
    let wq: Vec<f32> = q
        .as_slice::<i8>()?
        .iter()
        .enumerate()
        .map(|(i, &x)| x as f32 * scale[(i / inner) % scale.len()])
        .collect();
    let Some(shift) = super::bias::shift(&node.op, w.as_slice::<f32>()?, &wq, &w.shape, mean)
    else {
        return Ok(());
    };
    let beta = match &node.op {
        Op::Gemm(g) => g.beta,
        _ => 1.0,
    };
    if bias.len() != shift.len() || beta == 0.0 {
        return Ok(());
    }
    let corrected: Vec<f32> = bias
        .as_slice::<f32>()?
        .iter()
        .zip(&shift)
        .map(|(&b, &d)| b - (d / beta as f64) as f32)
        .collect();
    let name = format!("{}_corrected", out.graph.tensors[b].name);
    let id = out.add_const(name, Tensor::from_vec(&bias.shape, corrected)?);
    out.graph.nodes[k].inputs[2] = id;
    Ok(())
}

/// 10·log10(signal / noise), capped at 200 dB for exact results.
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if noise <= 0.0 {
        return 200.0;
    }
    if signal <= 0.0 {
        return 0.0;
    }
    (10.0 * (signal / noise).log10()).min(200.0)
}

/// The module with the enabled layers quantized. `ranges` holds the calibrated [lo, hi] of every
/// activation [`activations`] returns for the full set of layers (by tensor name). Also returns
/// each quantized weight's SQNR, by layer key.
pub fn insert(
    m: &Module,
    layers: &[Layer],
    enabled: &HashSet<String>,
    ranges: &HashMap<String, (f32, f32)>,
    means: &HashMap<String, Vec<f64>>,
) -> Result<(Module, HashMap<String, f64>)> {
    let (mut acts, shared) = activations(m, layers, enabled);
    if debug("weights") {
        acts.clear();
    }
    let mut ranges = ranges.clone();
    for &(i, o) in &shared {
        if let Some(&r) = ranges.get(&m.graph.tensors[i].name) {
            ranges.insert(m.graph.tensors[o].name.clone(), r);
        }
    }
    let mut out = m.clone();
    let n_old = out.graph.nodes.len();
    // New nodes to place before node k (k = n_old: at the end), or right after node k.
    let mut before: Vec<Vec<Node>> = vec![Vec::new(); n_old + 1];
    let mut after: Vec<Vec<Node>> = vec![Vec::new(); n_old];
    let mut producer = vec![None; out.graph.tensors.len()];
    for (k, n) in out.graph.nodes.iter().enumerate() {
        for &o in &n.outputs {
            producer[o] = Some(k);
        }
    }

    // Activations: t → Q → DQ, every reader rewired to the DQ output.
    let mut rewire: HashMap<TensorId, TensorId> = HashMap::new();
    for &t in &acts {
        let info = out.graph.tensors[t].clone();
        let &(lo, hi) = ranges
            .get(&info.name)
            .with_context(|| format!("no calibrated range for \"{}\"", info.name))?;
        let (scale, zp) = u8_params(lo, hi);
        let s = out.add_const(format!("{}_scale", info.name), Tensor::scalar(scale));
        let z = out.add_const(format!("{}_zero_point", info.name), Tensor::scalar(zp));
        let tq = out.add_value(
            format!("{}_quantized", info.name),
            edgefuse_runtime::ir::Fact::new(DType::U8, info.shape.clone()),
        );
        let tdq = out.add_value(
            format!("{}_dequantized", info.name),
            edgefuse_runtime::ir::Fact::new(DType::F32, info.shape.clone()),
        );
        let nodes = vec![
            Node {
                name: format!("{}_QuantizeLinear", info.name),
                op: Op::QuantizeLinear(QuantizeLinear {
                    axis: None,
                    to: DType::U8,
                }),
                inputs: vec![t, s, z],
                outputs: vec![tq],
            },
            Node {
                name: format!("{}_DequantizeLinear", info.name),
                op: Op::DequantizeLinear(DequantizeLinear { axis: None }),
                inputs: vec![tq, s, z],
                outputs: vec![tdq],
            },
        ];
        match producer[t] {
            Some(k) => after[k].extend(nodes),
            None => before[0].extend(nodes),
        }
        rewire.insert(t, tdq);
    }
    for node in out.graph.nodes.iter_mut() {
        for i in node.inputs.iter_mut() {
            if let Some(&r) = rewire.get(i) {
                *i = r;
            }
        }
    }

    // Weights: i8 constant + per-channel DQ, placed before the first reader.
    let mut done: HashMap<(TensorId, usize), TensorId> = HashMap::new();
    let mut weight_sqnr = HashMap::new();
    for (k, before_k) in before.iter_mut().enumerate().take(n_old) {
        let key = out.graph.tensors[out.graph.nodes[k].outputs[0]]
            .name
            .clone();
        let Some(layer) = layers.iter().find(|l| l.key == key) else {
            continue;
        };
        if !enabled.contains(&key) || debug("acts") {
            continue;
        }
        let (mut sig_noise, mut sig) = (0f64, 0f64);
        for &(pos, axis) in &layer.weights {
            let w = out.graph.nodes[k].inputs[pos];
            let dq = if let Some(&dq) = done.get(&(w, axis)) {
                dq
            } else {
                let info = out.graph.tensors[w].clone();
                let value = out.consts[w].clone().context("weight is not constant")?;
                let (q, scale, db) = quantize_weight(&value, axis)?;
                let power: f64 = value
                    .as_slice::<f32>()?
                    .iter()
                    .map(|&x| (x as f64).powi(2))
                    .sum();
                sig += power;
                sig_noise += power / 10f64.powf(db / 10.0);
                let c = scale.len();
                if pos == 1 {
                    correct_bias(&mut out, m, k, &value, &q, &scale, axis, means)?;
                }
                let wq = out.add_const(format!("{}_quantized", info.name), q);
                let s = out.add_const(
                    format!("{}_scale", info.name),
                    Tensor::from_vec(&[c], scale)?,
                );
                let z = out.add_const(
                    format!("{}_zero_point", info.name),
                    Tensor::from_vec(&[c], vec![0i8; c])?,
                );
                let dq = out.add_value(
                    format!("{}_dequantized", info.name),
                    edgefuse_runtime::ir::Fact::new(DType::F32, info.shape.clone()),
                );
                before_k.push(Node {
                    name: format!("{}_DequantizeLinear", info.name),
                    op: Op::DequantizeLinear(DequantizeLinear { axis: Some(axis) }),
                    inputs: vec![wq, s, z],
                    outputs: vec![dq],
                });
                done.insert((w, axis), dq);
                dq
            };
            out.graph.nodes[k].inputs[pos] = dq;
        }
        weight_sqnr.insert(key, sqnr_db(sig, sig_noise));
    }

    let old = std::mem::take(&mut out.graph.nodes);
    let mut nodes = Vec::with_capacity(old.len() + acts.len() * 2);
    for (k, n) in old.into_iter().enumerate() {
        nodes.append(&mut before[k]);
        nodes.push(n);
        nodes.append(&mut after[k]);
    }
    nodes.append(&mut before[n_old]);
    out.graph.nodes = nodes;
    let out = crate::onnx::prune::prune(out);
    out.graph
        .validate_with_consts(&|i| out.is_const(i))
        .context("graph after inserting QuantizeLinear/DequantizeLinear")?;
    Ok((out, weight_sqnr))
}

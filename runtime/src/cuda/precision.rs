//! The precision a CUDA session computes in, and the device graph it runs: decided from the
//! graph alone (no GPU), so `inspect --backend cuda` shows it and it is unit-tested here.
//!
//! fp32 runs the model's graph as it is. fp16 lowers it: every f32 value a node with an f16
//! CUDA kernel produces becomes f16 on the device, f32 constants those nodes read are narrowed
//! once at load, and `Cast` nodes are inserted where an f16 value meets something that needs
//! f32 — the graph's inputs (one cast at entry) and outputs (one at exit), and nodes that run
//! in f32 (no f16 kernel) or on the CPU. So the API boundary stays f32, integer inputs (token
//! ids) pass untouched, and every op's own CUDA file decides what it supports, in either dtype.
//!
//! A value a Cast to an integer type reads is an exact quantity (the integer product of an
//! imported MatMulInteger or ConvInteger, an index), which f16's 11-bit mantissa and 65504 range
//! would not hold, so the node that computes it stays f32 — found by walking back from the Cast
//! through the ops that compute nothing of their own (`passes_exactly`): data movement, whose
//! every output element is a copy of one input element (Reshape, also Flatten, Squeeze and
//! Unsqueeze; Transpose, Slice, Gather, GatherElements, Concat, Split, Expand, Pad, Identity).
//! The walk follows their float inputs (a Concat's every part, not a Gather's indices), keeps
//! the moving nodes themselves f32 (so no narrowing happens on the way), and stops at the first
//! node that computes: that node stays f32, the nodes before it compute in f16 as usual. Ops that
//! do arithmetic on the value, however simple (Floor, Clip, Neg, Max), stop the walk: the
//! quantity cast is theirs.

use std::borrow::Cow;

use super::carry::{widen, DerivedMap};
use super::fuse::{drop_flagged, fuse, Fused, Prologue};
use super::ops;
use super::placement::Placement;
use crate::ir::ops::{Cast, UnaryOp};
use crate::ir::{Fact, Graph, Node, Op, TensorId, TensorInfo, WeightRef};
use crate::tensor::{DType, TensorView};
use crate::{Error, Result};

/// What a CUDA session computes float tensors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 everywhere, TF32 off: results match the CPU backend.
    F32,
    /// f16 activations and weights, f32 accumulation (cuDNN/cuBLAS tensor cores, our kernels
    /// compute in f32 registers), f32 at the session's inputs and outputs.
    F16,
}

impl Precision {
    /// The default for a model: fp16 when its weights are stored as f16 (`compile --precision
    /// fp16`), else fp32.
    pub fn of(graph: &Graph) -> Precision {
        let f16 = graph
            .tensors
            .iter()
            .any(|t| t.weight.is_some_and(|w| w.stored == Some(DType::F16)));
        if f16 {
            Precision::F16
        } else {
            Precision::F32
        }
    }

    /// `fp32` or `fp16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "fp32",
            Precision::F16 => "fp16",
        }
    }

    /// The float dtype of activations.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
        }
    }
}

/// The graph a CUDA session runs, with where each piece comes from.
#[derive(Debug, Clone)]
pub struct Lowered {
    pub precision: Precision,
    /// The device graph: the model's tensors first (same ids; dtypes may be f16), then added
    /// ones (casts' outputs, narrowed constants).
    pub graph: Graph,
    /// Per device tensor: the model tensor whose value it holds (in its own dtype).
    pub origin: Vec<TensorId>,
    /// Per device node: the model node it runs, or None for an inserted cast.
    pub node_origin: Vec<Option<usize>>,
    /// Per model node: where it runs (before any kernel fails to build on the device).
    pub placements: Vec<Placement>,
    /// Per model node: the float dtype it computes in (None: its data input is not float, as
    /// for the int8 ops).
    pub node_dtype: Vec<Option<DType>>,
    /// Per device node: the reader it runs inside its kernel ([`super::fuse`]).
    pub fused: Vec<Option<Fused>>,
    /// Per model node: the model node whose kernel runs it, if absorbed ([`super::fuse`]).
    pub absorbed: Vec<Option<usize>>,
    /// Per device node: the input transform its kernel applies ([`super::fuse`]).
    pub prologue: Vec<Option<Prologue>>,
    /// Per model node: the model node whose kernel runs its bias and activation, if moved
    /// there ([`super::fuse`]).
    pub epilogue_in: Vec<Option<usize>>,
    /// Biases computed at upload, by device tensor ([`super::carry`]).
    pub derived: DerivedMap,
    /// (output, residual input) pairs a kernel computes in place, the output taking the
    /// residual's memory where the memory plan can ([`super::carry`]).
    pub in_place: Vec<(TensorId, TensorId)>,
    /// Per device node: whether [`super::carry`] changed it (its bias left out or replaced).
    pub carried: Vec<bool>,
    /// Per model node: whether its bias is carried to its readers ([`super::carry`]).
    pub bias_carried: Vec<bool>,
    /// Per graph input: the device holds it in f16 and the host converts the caller's f32
    /// value as it copies it in ([`HOST_CAST_MAX`]).
    pub host_inputs: Vec<bool>,
    /// Per graph output: the device writes it in f16 and the host widens it to f32 after the
    /// run.
    pub host_outputs: Vec<bool>,
}

impl Lowered {
    /// The device bytes of constant `t` of the device graph: the model's value, converted when
    /// its dtype differs (f32 narrowed to f16, or widened back). None for non-constants.
    pub fn constant<'m>(
        &self,
        t: TensorId,
        model_constant: impl Fn(TensorId) -> Option<TensorView<'m>>,
    ) -> Option<Result<Cow<'m, [u8]>>> {
        self.graph.tensors[t].weight?;
        let v = model_constant(self.origin[t])?;
        let want = self.graph.tensors[t].dtype;
        Some(if v.dtype == want {
            Ok(Cow::Borrowed(v.data))
        } else {
            convert(v.data, v.dtype, want).map(Cow::Owned)
        })
    }

    /// Every device tensor's bytes, as [`Lowered::constant`] (None for non-constants and for
    /// constants nothing reads, such as the f32 originals of narrowed weights), the derived
    /// biases computed from the device's values of the constants they combine.
    pub fn constants<'m>(
        &self,
        model_constant: impl Fn(TensorId) -> Option<TensorView<'m>>,
    ) -> Result<Vec<Option<Cow<'m, [u8]>>>> {
        let tensors = &self.graph.tensors;
        // What the device reads, and besides that what the derived biases are computed from.
        let mut read = vec![false; tensors.len()];
        let g = &self.graph;
        let nodes = g.nodes.iter().flat_map(|n| &n.inputs);
        for &t in nodes.chain(&g.outputs).chain(&g.inputs) {
            read[t] = true;
        }
        let mut needed = read.clone();
        for d in self.derived.values() {
            let through = d.through.iter().flat_map(|&(w, _, o)| [w, o]);
            for t in d.base.into_iter().chain(d.add).chain(through) {
                needed[t] = true;
            }
        }
        let mut out: Vec<Option<Cow<'m, [u8]>>> = Vec::with_capacity(tensors.len());
        for (t, info) in tensors.iter().enumerate() {
            if !needed[t] {
                out.push(None);
                continue;
            }
            let c = match self.derived.get(&t) {
                Some(d) => {
                    let value = |id: TensorId| -> Result<(Vec<f32>, Vec<usize>)> {
                        let bytes = out.get(id).and_then(|b| b.as_deref()).ok_or_else(|| {
                            Error::invalid(format!(
                                "carried bias: tensor {id} is not an earlier constant"
                            ))
                        })?;
                        Ok((widen(bytes, tensors[id].dtype)?, tensors[id].shape.clone()))
                    };
                    let channels = info.shape.first().copied().unwrap_or(0);
                    let v = d.eval(channels, value)?;
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    Some(Cow::Owned(convert(&bytes, DType::F32, info.dtype)?))
                }
                None => self.constant(t, &model_constant).transpose()?,
            };
            out.push(c);
        }
        for (c, &r) in out.iter_mut().zip(&read) {
            if !r {
                *c = None;
            }
        }
        Ok(out)
    }

    /// The device graph as a model the CPU backend runs, with each constant as the device
    /// holds it: how a rewrite of an f32 device graph is checked without a GPU. Refused when a
    /// kernel runs more than its own op (`fused`, `prologue`), which the CPU's kernels do not.
    pub fn cpu_model(&self, model: &crate::Model) -> Result<std::sync::Arc<crate::Model>> {
        if self.fused.iter().any(Option::is_some) || self.prologue.iter().any(Option::is_some) {
            return Err(Error::Unsupported(
                "a device graph with fused kernels has no CPU equivalent".into(),
            ));
        }
        let consts = self.constants(|o| model.constant(o))?;
        let tensors: Vec<Option<crate::Tensor>> = consts
            .iter()
            .zip(&self.graph.tensors)
            .map(|(c, info)| {
                c.as_deref()
                    .map(|b| crate::Tensor::from_bytes(info.dtype, &info.shape, b))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let refs: Vec<Option<&crate::Tensor>> = tensors.iter().map(Option::as_ref).collect();
        let meta = crate::format::Meta {
            graph: self.graph.clone(),
            ..Default::default()
        };
        crate::Model::from_bytes(&crate::format::write(meta, &refs)?)
    }
}

/// Converts little-endian float bytes between f32 and f16 (f16 rounds to nearest even).
pub fn convert(data: &[u8], from: DType, to: DType) -> Result<Vec<u8>> {
    match (from, to) {
        (a, b) if a == b => Ok(data.to_vec()),
        (DType::F32, DType::F16) => {
            let mut out = vec![0u8; data.len() / 2];
            crate::tensor::narrow_f32_bytes(data, &mut out);
            Ok(out)
        }
        (DType::F16, DType::F32) => {
            let mut out = vec![0u8; data.len() * 2];
            crate::tensor::widen_f16_bytes(data, &mut out);
            Ok(out)
        }
        _ => Err(Error::Unsupported(format!(
            "converting a {from} constant to {to}"
        ))),
    }
}

/// Where a model node runs under the CUDA backend, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlacement {
    pub placement: Placement,
    /// The float dtype it computes in.
    pub dtype: Option<DType>,
    /// The model node whose kernel runs it ([`super::fuse`]).
    pub inside: Option<usize>,
    /// The model node whose kernel runs its bias and activation ([`super::fuse`]).
    pub epilogue_in: Option<usize>,
    /// Whether its bias is added by its readers instead ([`super::carry`]).
    pub bias_carried: bool,
}

/// Per model node, at `precision`: see [`NodePlacement`].
pub fn placements(graph: &Graph, precision: Precision) -> Vec<NodePlacement> {
    let l = lower(graph, precision);
    (0..graph.nodes.len())
        .map(|k| NodePlacement {
            placement: l.placements[k].clone(),
            dtype: l.node_dtype[k],
            inside: l.absorbed[k],
            epilogue_in: l.epilogue_in[k],
            bias_carried: l.bias_carried[k],
        })
        .collect()
}

fn facts(graph: &Graph, ids: &[TensorId]) -> Vec<Fact> {
    ids.iter().map(|&i| graph.tensors[i].fact()).collect()
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16)
}

/// Where `op` runs with these facts: on the GPU, or on the CPU with the reason.
fn place(op: &Op, inputs: &[Fact], outputs: &[Fact]) -> Placement {
    match ops::supports(op, inputs, outputs) {
        Ok(()) => Placement::Gpu,
        Err(why) => Placement::Cpu(why),
    }
}

/// Lowers `graph` for a session at `precision` (see the module documentation).
pub fn lower(graph: &Graph, precision: Precision) -> Lowered {
    lower_with(graph, precision, &[])
}

/// Whether `op` only moves values: each output element is a copy of one element of its float
/// inputs (or a fill value), so a value cast to an integer after it is exactly what its
/// producer computed. Everything else computes, and ends the walk of [`exact_values`].
fn passes_exactly(op: &Op) -> bool {
    match op {
        Op::Reshape(_)
        | Op::Transpose(_)
        | Op::Slice(_)
        | Op::Gather(_)
        | Op::GatherElements(_)
        | Op::Concat(_)
        | Op::Split(_)
        | Op::Expand(_)
        | Op::Pad(_) => true,
        Op::Unary(u) => u.op == UnaryOp::Identity,
        _ => false,
    }
}

/// Per tensor: whether it holds a value that reaches a `Cast` to an integer type through
/// nothing but [`passes_exactly`] ops (the module documentation says why it stays f32).
fn exact_values(graph: &Graph) -> Vec<bool> {
    let mut exact = vec![false; graph.tensors.len()];
    // Nodes are in topological order: walking them backwards sees every reader of a tensor
    // before its producer, so one pass carries the mark from the Cast to the computing node.
    for node in graph.nodes.iter().rev() {
        let marks_inputs = match &node.op {
            Op::Cast(c) => !is_float(c.to),
            op => passes_exactly(op) && node.outputs.iter().any(|&o| exact[o]),
        };
        if marks_inputs {
            for &t in &node.inputs {
                if is_float(graph.tensors[t].dtype) {
                    exact[t] = true;
                }
            }
        }
    }
    exact
}

/// [`lower`], with model nodes flagged in `keep_f32` computing in f32 (a session flags those
/// whose f16 kernel failed to build on the device, then lowers again).
pub fn lower_with(graph: &Graph, precision: Precision, keep_f32: &[bool]) -> Lowered {
    lower_fusing(graph, precision, keep_f32, &[])
}

/// [`lower_with`], with model nodes flagged in `unfused` left out of every fusion (a session
/// flags those whose fused kernel failed to build, then lowers again).
pub fn lower_fusing(
    graph: &Graph,
    precision: Precision,
    keep_f32: &[bool],
    unfused: &[bool],
) -> Lowered {
    let n = graph.tensors.len();
    // A node computes in the float type of its data (first) input; an int8 op (QConv, with
    // an f32 bias) or an integer op has none.
    let node_dtype = |node: &Node| -> Option<DType> {
        let first = node.inputs.first().map(|&t| graph.tensors[t].dtype);
        first.filter(|&d| is_float(d))
    };
    if precision == Precision::F32 {
        let mut l = Lowered {
            precision,
            graph: graph.clone(),
            origin: (0..n).collect(),
            node_origin: (0..graph.nodes.len()).map(Some).collect(),
            placements: graph
                .nodes
                .iter()
                .map(|nd| {
                    place(
                        &nd.op,
                        &facts(graph, &nd.inputs),
                        &facts(graph, &nd.outputs),
                    )
                })
                .collect(),
            node_dtype: graph.nodes.iter().map(node_dtype).collect(),
            fused: vec![None; graph.nodes.len()],
            absorbed: vec![None; graph.nodes.len()],
            prologue: vec![None; graph.nodes.len()],
            epilogue_in: vec![None; graph.nodes.len()],
            derived: DerivedMap::new(),
            in_place: Vec::new(),
            carried: vec![false; graph.nodes.len()],
            bias_carried: vec![false; graph.nodes.len()],
            host_inputs: vec![false; graph.inputs.len()],
            host_outputs: vec![false; graph.outputs.len()],
        };
        fuse(&mut l, unfused);
        return l;
    }
    let half = precision.dtype();
    let mut b = Builder {
        g: Graph {
            tensors: graph.tensors.clone(),
            nodes: Vec::with_capacity(graph.nodes.len() + 8),
            inputs: graph.inputs.clone(),
            outputs: Vec::with_capacity(graph.outputs.len()),
        },
        origin: (0..n).collect(),
        node_origin: Vec::with_capacity(graph.nodes.len() + 8),
        other: vec![None; n],
    };
    let mut placements = Vec::with_capacity(graph.nodes.len());
    let mut dtypes = Vec::with_capacity(graph.nodes.len());
    let exact = exact_values(graph);
    for (k, node) in graph.nodes.iter().enumerate() {
        let orig_in = facts(graph, &node.inputs);
        let narrow = |f: &Fact| match f.dtype {
            DType::F32 => Fact::new(half, f.shape.clone()),
            _ => f.clone(),
        };
        let half_in: Vec<Fact> = orig_in.iter().map(narrow).collect();
        // An f16 kernel writes f16 where the model records f32 (a Cast writes what it says).
        // The IR's own shape inference is f32-only for most float ops, so it is not asked.
        let orig_out = facts(graph, &node.outputs);
        let half_out: Vec<Fact> = match &node.op {
            Op::Cast(_) => orig_out.clone(),
            _ => orig_out.iter().map(narrow).collect(),
        };
        let in_half = half_in != orig_in
            && !keep_f32.get(k).copied().unwrap_or(false)
            && !node.outputs.iter().any(|&o| exact[o])
            && ops::supports(&node.op, &half_in, &half_out).is_ok();
        if in_half {
            for (&o, f) in node.outputs.iter().zip(&half_out) {
                b.g.tensors[o].dtype = f.dtype;
            }
        }
        let (want, placement, dtype) = if in_half {
            (half_in, Placement::Gpu, Some(half))
        } else {
            let p = place(&node.op, &orig_in, &orig_out);
            (orig_in, p, node_dtype(node))
        };
        let inputs = node
            .inputs
            .iter()
            .zip(&want)
            .map(|(&t, f)| b.get(t, f.dtype))
            .collect();
        b.g.nodes.push(Node {
            name: node.name.clone(),
            op: node.op.clone(),
            inputs,
            outputs: node.outputs.clone(),
        });
        b.node_origin.push(Some(k));
        placements.push(placement);
        dtypes.push(dtype);
    }
    for &o in &graph.outputs {
        let t = b.get(o, graph.tensors[o].dtype);
        b.g.outputs.push(t);
    }
    // Every model node flagged unfused: `CudaOptions::fuse` is off, and so is this.
    let fusing =
        (unfused.is_empty() || unfused.iter().any(|&u| !u)) && !super::fuse::skipped("host-casts");
    let (host_inputs, host_outputs) = if fusing {
        host_edge_casts(&mut b.g, &mut b.node_origin)
    } else {
        (
            vec![false; b.g.inputs.len()],
            vec![false; b.g.outputs.len()],
        )
    };
    let mut l = Lowered {
        precision,
        host_inputs,
        host_outputs,
        fused: vec![None; b.g.nodes.len()],
        absorbed: vec![None; graph.nodes.len()],
        prologue: vec![None; b.g.nodes.len()],
        epilogue_in: vec![None; graph.nodes.len()],
        derived: DerivedMap::new(),
        in_place: Vec::new(),
        carried: vec![false; b.g.nodes.len()],
        bias_carried: vec![false; graph.nodes.len()],
        graph: b.g,
        origin: b.origin,
        node_origin: b.node_origin,
        placements,
        node_dtype: dtypes,
    };
    fuse(&mut l, unfused);
    l
}

/// Largest graph input or output (elements) whose f32 ↔ f16 conversion at the edge of an
/// fp16 session runs on the host rather than as a cast kernel: a few µs of CPU at most, where
/// a launch costs 2–5 µs of the seed CNN's ~40 (the input as it is copied into the pinned
/// buffer, `CudaSession::set_input`; the output after the run).
pub const HOST_CAST_MAX: usize = 4096;

/// Moves the inserted casts at the graph's edges to the host where the tensor is small
/// ([`HOST_CAST_MAX`]) and the cast is all that reads it (an input) or all that writes it for
/// nothing else to read (an output): the device graph's input or output becomes the f16 tensor.
fn host_edge_casts(g: &mut Graph, node_origin: &mut Vec<Option<usize>>) -> (Vec<bool>, Vec<bool>) {
    let mut readers = vec![0usize; g.tensors.len()];
    for n in &g.nodes {
        for &t in &n.inputs {
            readers[t] += 1;
        }
    }
    let small =
        |g: &Graph, t: TensorId| g.tensors[t].shape.iter().product::<usize>() <= HOST_CAST_MAX;
    let inserted_cast = |g: &Graph, k: usize, to: DType| {
        node_origin[k].is_none() && matches!(&g.nodes[k].op, Op::Cast(c) if c.to == to)
    };
    let mut gone = vec![false; g.nodes.len()];
    let mut host_inputs = vec![false; g.inputs.len()];
    for (i, host) in host_inputs.iter_mut().enumerate() {
        let t = g.inputs[i];
        let Some(k) = (0..g.nodes.len()).find(|&k| g.nodes[k].inputs == [t]) else {
            continue;
        };
        let out = g.nodes[k].outputs[0];
        let twice = g.inputs.iter().filter(|&&x| x == t).count() > 1;
        if readers[t] == 1
            && !twice
            && !g.outputs.contains(&t)
            && g.tensors[t].dtype == DType::F32
            && inserted_cast(g, k, DType::F16)
            && small(g, t)
        {
            gone[k] = true;
            g.inputs[i] = out;
            *host = true;
        }
    }
    let mut host_outputs = vec![false; g.outputs.len()];
    for (j, host) in host_outputs.iter_mut().enumerate() {
        let o = g.outputs[j];
        let Some(k) = (0..g.nodes.len()).find(|&k| g.nodes[k].outputs.contains(&o)) else {
            continue;
        };
        let h = g.nodes[k].inputs[0];
        let h_written = g.nodes.iter().any(|n| n.outputs.contains(&h));
        let twice = g.outputs.iter().filter(|&&x| x == o).count() > 1;
        if readers[o] == 0
            && !twice
            && h_written
            && !g.outputs.contains(&h)
            && g.tensors[h].dtype == DType::F16
            && inserted_cast(g, k, DType::F32)
            && small(g, o)
        {
            gone[k] = true;
            g.outputs[j] = h;
            *host = true;
        }
    }
    drop_flagged(&mut g.nodes, &gone);
    drop_flagged(node_origin, &gone);
    (host_inputs, host_outputs)
}

struct Builder {
    g: Graph,
    origin: Vec<TensorId>,
    node_origin: Vec<Option<usize>>,
    /// Per model tensor: its copy in the other float dtype, once made.
    other: Vec<Option<TensorId>>,
}

impl Builder {
    /// Model tensor `t` as `dtype` on the device: itself, or a converted copy (a narrowed
    /// constant, or a cast inserted here, made once and shared by later readers).
    fn get(&mut self, t: TensorId, dtype: DType) -> TensorId {
        if self.g.tensors[t].dtype == dtype {
            return t;
        }
        if let Some(c) = self.other[t] {
            return c;
        }
        let src = &self.g.tensors[t];
        let id = self.g.tensors.len();
        let suffix = dtype.name();
        // A constant stays a constant (converted at upload); the weight reference only marks
        // it as one, with the length of its device bytes.
        let weight = src.weight.map(|w| WeightRef {
            offset: w.offset,
            len: (src.shape.iter().product::<usize>() * dtype.size()) as u64,
            stored: None,
        });
        self.g.tensors.push(TensorInfo {
            name: format!("{}.{suffix}", src.name),
            dtype,
            shape: src.shape.clone(),
            weight,
            quant: None,
        });
        self.origin.push(t);
        if weight.is_none() {
            self.g.nodes.push(Node {
                name: format!("{}/to_{suffix}", self.g.tensors[t].name),
                op: Op::Cast(Cast { to: dtype }),
                inputs: vec![t],
                outputs: vec![id],
            });
            self.node_origin.push(None);
        }
        self.other[t] = Some(id);
        id
    }
}

#[cfg(test)]
#[path = "precision_tests.rs"]
mod tests;

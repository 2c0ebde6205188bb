//! QuantizeLinear/DequantizeLinear bookkeeping for the int8 rules: reading a pair's parameters,
//! cancelling pairs, moving DequantizeLinear past data movement, folding Clip/ReLU between
//! pairs into the clamp, and finally folding the DequantizeLinear of constants nobody consumed.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{DequantizeLinear, QOut, QScale, Unary, UnaryOp};
use edgefuse_runtime::ir::{Node, Op, TensorId};
use edgefuse_runtime::{DType, Tensor};

use super::query::{producers, replace_uses, use_counts};
use crate::Module;

/// A DequantizeLinear node and what it reads.
#[derive(Debug, Clone)]
pub struct Dq {
    pub node: usize,
    /// The quantized tensor (u8, i8 or i32).
    pub q: TensorId,
    pub dtype: DType,
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    pub axis: Option<usize>,
}

impl Dq {
    /// Per-tensor parameters, if that is what this is.
    pub fn per_tensor(&self) -> Option<QScale> {
        (self.scale.len() == 1).then(|| QScale {
            scale: self.scale[0],
            zero_point: self.zero_point[0],
        })
    }
}

/// Scale and zero point constants (zero point absent: 0) of a Q or DQ node's inputs 1 and 2.
fn params(m: &Module, node: &Node) -> Option<(Vec<f32>, Vec<i32>)> {
    let s = m.consts[*node.inputs.get(1)?].as_ref()?.to_f32_vec().ok()?;
    let z: Vec<i32> = match node.inputs.get(2) {
        Some(&z) => m.consts[z]
            .as_ref()?
            .to_i64_vec()
            .ok()?
            .into_iter()
            .map(|v| v as i32)
            .collect(),
        None => vec![0; s.len()],
    };
    (z.len() == s.len() && !s.is_empty() && s.iter().all(|v| v.is_finite() && *v > 0.0))
        .then_some((s, z))
}

/// The DequantizeLinear producing `t`, with constant parameters.
pub fn dq_of(m: &Module, prod: &[Option<usize>], t: TensorId) -> Option<Dq> {
    let k = prod[t]?;
    let node = &m.graph.nodes[k];
    let Op::DequantizeLinear(DequantizeLinear { axis }) = node.op else {
        return None;
    };
    let (scale, zero_point) = params(m, node)?;
    let q = node.inputs[0];
    Some(Dq {
        node: k,
        q,
        dtype: m.graph.tensors[q].dtype,
        scale,
        zero_point,
        axis,
    })
}

/// If `t`'s only reader is a per-tensor QuantizeLinear with constant parameters: that node's
/// index and its output description.
pub fn sole_q_reader(m: &Module, uses: &[usize], t: TensorId) -> Option<(usize, QOut)> {
    if uses[t] != 1 {
        return None;
    }
    let (k, node) = m
        .graph
        .nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.inputs.contains(&t))?;
    let Op::QuantizeLinear(q) = &node.op else {
        return None;
    };
    if node.inputs[0] != t {
        return None;
    }
    let (s, z) = params(m, node)?;
    (s.len() == 1).then_some((
        k,
        QOut {
            dtype: q.to,
            q: Some(QScale {
                scale: s[0],
                zero_point: z[0],
            }),
        },
    ))
}

/// `Q(DQ(q))` with the same per-tensor parameters and type is `q` itself (exactly: `(q − z)·s/s`
/// rounds back to `q − z`).
pub fn cancel_qdq_pairs(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        let Op::QuantizeLinear(q) = &node.op else {
            continue;
        };
        let Some(dq) = dq_of(m, &prod, node.inputs[0]) else {
            continue;
        };
        let Some((s, z)) = params(m, node) else {
            continue;
        };
        let out = node.outputs[0];
        if dq.dtype == q.to
            && s.len() == 1
            && dq.scale == s
            && dq.zero_point == z
            && !m.graph.outputs.contains(&out)
        {
            replace_uses(&mut m.graph, out, dq.q);
            m.graph.nodes.remove(k);
            return Ok(true);
        }
    }
    Ok(false)
}

/// `Q(act(DQ(q)))` with equal per-tensor parameters, act ReLU or Clip: when the clamp keeps the
/// whole range of the type it is `q`; when `q` comes from an int8 op with a quantized output and
/// no activation of its own (and nothing else reads it), the activation moves into that op.
pub fn fold_clip_into_qdq(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    let uses = use_counts(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        let Op::Unary(Unary { op: act }) = node.op else {
            continue;
        };
        if !matches!(act, UnaryOp::Relu | UnaryOp::Clip { .. }) {
            continue;
        }
        let Some(dq) = dq_of(m, &prod, node.inputs[0]) else {
            continue;
        };
        let Some(qs) = dq.per_tensor() else { continue };
        let Some((qk, out)) = sole_q_reader(m, &uses, node.outputs[0]) else {
            continue;
        };
        if out.dtype != dq.dtype || out.q != Some(qs) {
            continue;
        }
        let (lo, hi) = if dq.dtype == DType::I8 {
            (-128.0, 127.0)
        } else {
            (0.0, 255.0)
        };
        let quant = |v: f32| (v / qs.scale).round_ties_even() + qs.zero_point as f32;
        let (alo, ahi) = match act {
            UnaryOp::Clip { min, max } => (quant(min), quant(max)),
            _ => (qs.zero_point as f32, f32::INFINITY),
        };
        let q_out = m.graph.nodes[qk].outputs[0];
        if m.graph.outputs.contains(&q_out) {
            continue;
        }
        if alo <= lo && ahi >= hi {
            replace_uses(&mut m.graph, q_out, dq.q);
            return Ok(true);
        }
        let Some(p) = prod[dq.q] else { continue };
        if uses[dq.q] != 1 || uses[node.inputs[0]] != 1 {
            continue;
        }
        let slot = match &mut m.graph.nodes[p].op {
            Op::QConv(c) if c.out.q.is_some() => &mut c.conv.act,
            Op::QGemm(g) if g.out.q.is_some() => &mut g.act,
            Op::QAdd(a) if a.out.q.is_some() => &mut a.act,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        *slot = Some(act);
        replace_uses(&mut m.graph, q_out, dq.q);
        return Ok(true);
    }
    Ok(false)
}

/// Reshape/Transpose of `DQ(q)` (per tensor, read only there) becomes the same movement of `q`
/// followed by the DequantizeLinear, so the bytes move as u8 and the pair after it can cancel.
pub fn push_dequantize_through_movement(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    let uses = use_counts(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        if !matches!(node.op, Op::Reshape(_) | Op::Transpose(_)) || node.inputs.len() != 1 {
            continue;
        }
        let x = node.inputs[0];
        let Some(dq) = dq_of(m, &prod, x) else {
            continue;
        };
        if dq.per_tensor().is_none() || uses[x] != 1 || m.is_const(dq.q) {
            continue;
        }
        let out = node.outputs[0];
        let info = m.graph.tensors[out].clone();
        let moved = m.add_value(
            format!("{}_quantized", info.name),
            edgefuse_runtime::ir::Fact::new(dq.dtype, info.shape.clone()),
        );
        let mut dq_node = m.graph.nodes[dq.node].clone();
        dq_node.name = format!("{}_dequantize", m.graph.nodes[k].name);
        dq_node.inputs[0] = moved;
        dq_node.outputs = vec![out];
        let node = &mut m.graph.nodes[k];
        node.inputs[0] = dq.q;
        node.outputs = vec![moved];
        m.graph.nodes.insert(k + 1, dq_node);
        return Ok(true);
    }
    Ok(false)
}

/// DequantizeLinear of constants that no int8 rule consumed becomes an f32 constant.
pub fn fold_constant_dequantize(m: &mut Module) -> Result<bool> {
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        if !matches!(node.op, Op::DequantizeLinear(_))
            || !node.inputs.iter().all(|&i| m.is_const(i))
        {
            continue;
        }
        let vals: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|&i| m.consts[i].as_ref().unwrap())
            .collect();
        let out = node.outputs[0];
        if m.graph.outputs.contains(&out) {
            continue;
        }
        let value = crate::onnx::eval(&node.op, &vals)?.remove(0);
        let name = m.graph.tensors[out].name.clone();
        let c = m.add_const(format!("{name}.folded"), value);
        replace_uses(&mut m.graph, out, c);
        m.graph.nodes.remove(k);
        return Ok(true);
    }
    Ok(false)
}

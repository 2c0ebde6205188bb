//! onnxruntime's dynamic quantization of MatMul and Conv as one int8 op each. `quantize_dynamic`
//! writes `DynamicQuantizeLinear(x) → MatMulInteger(xq, W, zx, zw) → Cast(f32) → Mul(sx·sw)`,
//! which the importer reads as `MatMul(DQ(xq, 1, zx), DQ(W, 1, zw)) → Cast(i32) → Cast(f32)` and
//! a Mul by `Mul(sx, sw)`; `fold_dynamic_matmul` makes the whole chain one
//! `DynamicQuantizeMatMul(x, W)` (W stays u8/i8 in the file; the kernel quantizes x itself, as
//! DynamicQuantizeLinear does), and `fold_bias_into_dynamic_matmul` takes the bias Add that
//! follows into its epilogue. Its Conv chain (ConvInteger) becomes `DynamicQuantizeConv(x, W)`
//! the same way (`fold_dynamic_conv`), which then takes the bias Add and the activation after
//! it; `pad::fold_pad_into_conv` folds a zero Pad before it, as for a Conv. Anything else stays the float chain, exact as before.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{
    BinaryOp, Cast, DequantizeLinear, DynamicQuantizeConv, DynamicQuantizeMatMul,
};
use edgefuse_runtime::ir::{Op, TensorId};
use edgefuse_runtime::{DType, Tensor};

use super::activation::fusable;
use super::qdq::dq_of;
use super::query::{absorb, find_pair, producers, use_counts};
use crate::Module;

/// The node producing `t` when it is a Cast to `to`, and its input.
fn cast_of(m: &Module, prod: &[Option<usize>], t: TensorId, to: DType) -> Option<TensorId> {
    let node = &m.graph.nodes[prod[t]?];
    matches!(node.op, Op::Cast(Cast { to: d }) if d == to).then_some(node.inputs[0])
}

fn is_mul(op: &Op) -> bool {
    matches!(op, Op::Binary(b) if b.op == BinaryOp::Mul)
}

/// The constant value of `t` as f32, when it is one.
fn const_f32(m: &Module, t: TensorId) -> Option<Vec<f32>> {
    let c = m.consts.get(t)?.as_ref()?;
    (c.dtype == DType::F32).then(|| c.to_f32_vec().ok())?
}

/// `x` of the DynamicQuantizeLinear whose outputs (xq, sx, zx) the matched chain reads.
struct Matched {
    x: TensorId,
    w: TensorId,
    w_scale: Vec<f32>,
    w_zero_point: Vec<i32>,
}

/// Reads `Mul(c, s)` (the operands in either order) as the dynamic MatMul chain.
fn match_chain(m: &Module, prod: &[Option<usize>], c: TensorId, s: TensorId) -> Option<Matched> {
    let g = &m.graph;
    // c = Cast(f32, Cast(i32, MatMul(DQ(xq, 1, zx), DQ(W, 1, zw)))).
    let mm = cast_of(m, prod, cast_of(m, prod, c, DType::F32)?, DType::I32)?;
    let mm = &g.nodes[prod[mm]?];
    let [xf, wf] = mm.inputs[..] else { return None };
    if !matches!(mm.op, Op::MatMul(_)) {
        return None;
    }
    let (x, sx) = dynamic_source(m, prod, xf)?;
    let w = dq_of(m, prod, wf)?;
    let wshape = &g.tensors[w.q].shape;
    let ok = matches!(w.dtype, DType::U8 | DType::I8)
        && m.is_const(w.q)
        && wshape.len() == 2
        && w.scale.iter().all(|&v| v == 1.0)
        && (w.zero_point.len() == 1 || w.axis == Some(1));
    if !ok {
        return None;
    }
    let n = wshape[1];
    // s = Mul(sx, sw), sw a constant: one value or one per column.
    let sw = other_factor(m, prod, s, sx)?;
    let scale = const_f32(m, sw)?;
    let sw_shape = &g.tensors[sw].shape;
    let per_column = scale.len() == n && sw_shape.last() == Some(&n);
    if !(scale.len() == 1 || per_column) || scale.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let (w_scale, w_zero_point) = per_channel_pairs(scale, w.zero_point, n);
    Some(Matched {
        x,
        w: w.q,
        w_scale,
        w_zero_point,
    })
}

/// `Mul(Cast(f32, Cast(i32, MatMul(DQ(xq, 1, zx), DQ(W, 1, zw)))), Mul(sx, sw))`, where
/// `(xq, sx, zx) = DynamicQuantizeLinear(x)` and W is a 2-D u8/i8 constant →
/// `DynamicQuantizeMatMul(x, W)`.
pub fn fold_dynamic_matmul(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        if !is_mul(&node.op) || node.inputs.len() != 2 {
            continue;
        }
        for (c, s) in [(0, 1), (1, 0)] {
            let (ct, st) = (node.inputs[c], node.inputs[s]);
            // The scale must not widen the product's shape.
            if m.graph.tensors[ct].shape != m.graph.tensors[node.outputs[0]].shape {
                continue;
            }
            let Some(hit) = match_chain(m, &prod, ct, st) else {
                continue;
            };
            let node = &mut m.graph.nodes[k];
            node.op = Op::DynamicQuantizeMatMul(DynamicQuantizeMatMul {
                w_scale: hit.w_scale,
                w_zero_point: hit.w_zero_point,
                has_bias: false,
            });
            node.inputs = vec![hit.x, hit.w];
            return Ok(true);
        }
    }
    Ok(false)
}

/// `Add(DynamicQuantizeMatMul(x, W), b)` (either order) with b an f32 constant of one value or
/// one per column, broadcast along the last axis only → the bias of the DynamicQuantizeMatMul.
pub fn fold_bias_into_dynamic_matmul(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    for (k, node) in g.nodes.iter().enumerate() {
        if !matches!(&node.op, Op::Binary(b) if b.op == BinaryOp::Add) || node.inputs.len() != 2 {
            continue;
        }
        for (y_pos, b_pos) in [(0, 1), (1, 0)] {
            let (y, b) = (node.inputs[y_pos], node.inputs[b_pos]);
            let Some(p) = prod[y] else { continue };
            let Op::DynamicQuantizeMatMul(op) = &g.nodes[p].op else {
                continue;
            };
            let yshape = &g.tensors[y].shape;
            let n = yshape.last().copied().unwrap_or(1);
            let Some(bias) = const_f32(m, b) else {
                continue;
            };
            let bshape = &g.tensors[b].shape;
            let fits = bshape.len() <= yshape.len()
                && bshape.iter().rev().skip(1).all(|&d| d == 1)
                && (bias.len() == n || bias.len() == 1);
            if op.has_bias
                || uses[y] != 1
                || g.outputs.contains(&y)
                || !fits
                || g.tensors[node.outputs[0]].shape != *yshape
            {
                continue;
            }
            let bias = if bias.len() == n {
                bias
            } else {
                vec![bias[0]; n]
            };
            let name = format!("{}.bias", g.tensors[node.outputs[0]].name);
            let bt = m.add_const(name, Tensor::from_vec(&[n], bias)?);
            let dq = &mut m.graph.nodes[p];
            if let Op::DynamicQuantizeMatMul(op) = &mut dq.op {
                op.has_bias = true;
            }
            dq.inputs.push(bt);
            absorb(&mut m.graph, p, k);
            return Ok(true);
        }
    }
    Ok(false)
}

/// `x` of the DynamicQuantizeLinear whose (xq, zx) `DQ(xq, 1, zx)` — the tensor `xf` — reads,
/// and that node's scale output sx.
fn dynamic_source(
    m: &Module,
    prod: &[Option<usize>],
    xf: TensorId,
) -> Option<(TensorId, TensorId)> {
    let g = &m.graph;
    let xdq = &g.nodes[prod[xf]?];
    let Op::DequantizeLinear(DequantizeLinear { axis: None }) = xdq.op else {
        return None;
    };
    let [xq, one, zx] = xdq.inputs[..] else {
        return None;
    };
    let dql = &g.nodes[prod[xq]?];
    let ok = matches!(dql.op, Op::DynamicQuantizeLinear(_))
        && dql.outputs[0] == xq
        && dql.outputs[2] == zx
        && const_f32(m, one)? == [1.0];
    ok.then(|| (dql.inputs[0], dql.outputs[1]))
}

/// The other operand of the Mul producing `s`, when one of its two operands is `sx`.
fn other_factor(m: &Module, prod: &[Option<usize>], s: TensorId, sx: TensorId) -> Option<TensorId> {
    let sm = &m.graph.nodes[prod[s]?];
    if !is_mul(&sm.op) {
        return None;
    }
    match sm.inputs[..] {
        [a, b] if a == sx => Some(b),
        [a, b] if b == sx => Some(a),
        _ => None,
    }
}

/// Whether a constant of shape `shape` and `len` values broadcasts over an output of rank
/// `rank` as one value, or as one per channel (axis 1, `m` of them).
fn per_channel_shape(shape: &[usize], len: usize, rank: usize, m: usize) -> Option<bool> {
    if len == 1 {
        return (shape.len() <= rank).then_some(false);
    }
    if len != m || shape.len() > rank || shape.len() + 1 < rank {
        return None;
    }
    // Aligned to the output's last axes: the channel axis is `shape.len() − (rank − 1)`.
    let at = shape.len() + 1 - rank;
    shape
        .iter()
        .enumerate()
        .all(|(i, &d)| if i == at { d == m } else { d == 1 })
        .then_some(true)
}

/// One value each for scale and zero point, or both one per channel (`m`).
fn per_channel_pairs(scale: Vec<f32>, zp: Vec<i32>, m: usize) -> (Vec<f32>, Vec<i32>) {
    if scale.len() == zp.len() {
        return (scale, zp);
    }
    let at = |len: usize, c: usize| if len == 1 { 0 } else { c };
    (
        (0..m).map(|c| scale[at(scale.len(), c)]).collect(),
        (0..m).map(|c| zp[at(zp.len(), c)]).collect(),
    )
}

/// `Mul(Cast(f32, Cast(i32, Conv(DQ(xq, 1, zx), DQ(W, 1, zw)))), Mul(sx, sw))` (either order
/// of each Mul), where `(xq, sx, zx) = DynamicQuantizeLinear(x)`, the Conv has no bias,
/// activation or residual, W is a u8/i8 constant with one zero point or one per output channel,
/// and sw one positive scale or one per output channel → `DynamicQuantizeConv(x, W)`.
pub fn fold_dynamic_conv(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        if !is_mul(&node.op) || node.inputs.len() != 2 {
            continue;
        }
        for (c, s) in [(0, 1), (1, 0)] {
            let (ct, st) = (node.inputs[c], node.inputs[s]);
            let out_shape = &m.graph.tensors[node.outputs[0]].shape;
            if m.graph.tensors[ct].shape != *out_shape {
                continue;
            }
            let Some(op) = match_conv_chain(m, &prod, ct, st) else {
                continue;
            };
            let (op, x, w) = op;
            let node = &mut m.graph.nodes[k];
            node.op = Op::DynamicQuantizeConv(op);
            node.inputs = vec![x, w];
            return Ok(true);
        }
    }
    Ok(false)
}

fn match_conv_chain(
    m: &Module,
    prod: &[Option<usize>],
    c: TensorId,
    s: TensorId,
) -> Option<(DynamicQuantizeConv, TensorId, TensorId)> {
    let g = &m.graph;
    let conv_out = cast_of(m, prod, cast_of(m, prod, c, DType::F32)?, DType::I32)?;
    let node = &g.nodes[prod[conv_out]?];
    let Op::Conv(conv) = &node.op else {
        return None;
    };
    let [xf, wf] = node.inputs[..] else {
        return None;
    };
    if conv.has_bias || conv.act.is_some() || conv.residual {
        return None;
    }
    let (x, sx) = dynamic_source(m, prod, xf)?;
    let w = dq_of(m, prod, wf)?;
    let wshape = &g.tensors[w.q].shape;
    let rank = g.tensors[c].shape.len();
    let out_m = *wshape.first()?;
    let ok = matches!(w.dtype, DType::U8 | DType::I8)
        && m.is_const(w.q)
        && wshape.len() == rank
        && w.scale.iter().all(|&v| v == 1.0)
        && (w.zero_point.len() == 1 || (w.axis == Some(0) && w.zero_point.len() == out_m));
    if !ok {
        return None;
    }
    // s = Mul(sx, sw), sw a constant: one value or one per output channel.
    let sw = other_factor(m, prod, s, sx)?;
    let scale = const_f32(m, sw)?;
    per_channel_shape(&g.tensors[sw].shape, scale.len(), rank, out_m)?;
    if scale.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let (w_scale, w_zero_point) = per_channel_pairs(scale, w.zero_point, out_m);
    let op = DynamicQuantizeConv {
        conv: conv.clone(),
        w_scale,
        w_zero_point,
    };
    Some((op, x, w.q))
}

/// `Add(DynamicQuantizeConv(x, W), b)` (either order) with b an f32 constant of one value or
/// one per output channel, broadcast over the other axes → the convolution's bias.
pub fn fold_bias_into_dynamic_conv(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    for (k, node) in g.nodes.iter().enumerate() {
        if !matches!(&node.op, Op::Binary(b) if b.op == BinaryOp::Add) || node.inputs.len() != 2 {
            continue;
        }
        for (y_pos, b_pos) in [(0, 1), (1, 0)] {
            let (y, b) = (node.inputs[y_pos], node.inputs[b_pos]);
            let Some(p) = prod[y] else { continue };
            let Op::DynamicQuantizeConv(op) = &g.nodes[p].op else {
                continue;
            };
            let yshape = &g.tensors[y].shape;
            let Some(bias) = const_f32(m, b) else {
                continue;
            };
            let out_m = yshape.get(1).copied().unwrap_or(0);
            let fits = per_channel_shape(&g.tensors[b].shape, bias.len(), yshape.len(), out_m);
            if op.conv.has_bias
                || op.conv.act.is_some()
                || uses[y] != 1
                || g.outputs.contains(&y)
                || fits.is_none()
                || g.tensors[node.outputs[0]].shape != *yshape
            {
                continue;
            }
            let bias = if bias.len() == out_m {
                bias
            } else {
                vec![bias[0]; out_m]
            };
            let name = format!("{}.bias", g.tensors[node.outputs[0]].name);
            let bt = m.add_const(name, Tensor::from_vec(&[out_m], bias)?);
            let dq = &mut m.graph.nodes[p];
            if let Op::DynamicQuantizeConv(op) = &mut dq.op {
                op.conv.has_bias = true;
            }
            dq.inputs.push(bt);
            absorb(&mut m.graph, p, k);
            return Ok(true);
        }
    }
    Ok(false)
}

/// DynamicQuantizeConv → activation (single use): the activation in its epilogue.
pub fn fuse_dynamic_conv_activation(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| matches!(&g.nodes[a].op, Op::DynamicQuantizeConv(c) if c.conv.act.is_none()),
        |b| fusable(&g.nodes[b].op).is_some(),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let act = fusable(&m.graph.nodes[b].op);
    if let Op::DynamicQuantizeConv(c) = &mut m.graph.nodes[a].op {
        c.conv.act = act;
    }
    absorb(&mut m.graph, a, b);
    Ok(true)
}

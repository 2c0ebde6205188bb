//! onnxruntime's dynamic quantization of MatMul as one int8 op. `quantize_dynamic` writes
//! `DynamicQuantizeLinear(x) → MatMulInteger(xq, W, zx, zw) → Cast(f32) → Mul(sx·sw)`, which
//! the importer reads as `MatMul(DQ(xq, 1, zx), DQ(W, 1, zw)) → Cast(i32) → Cast(f32)` and a
//! Mul by `Mul(sx, sw)`; `fold_dynamic_matmul` makes the whole chain one
//! `DynamicQuantizeMatMul(x, W)` (W stays u8/i8 in the file; the kernel quantizes x itself, as
//! DynamicQuantizeLinear does), and `fold_bias_into_dynamic_matmul` takes the bias Add that
//! follows into its epilogue. Anything else stays the float chain, exact as before.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{BinaryOp, Cast, DequantizeLinear, DynamicQuantizeMatMul};
use edgefuse_runtime::ir::{Op, TensorId};
use edgefuse_runtime::{DType, Tensor};

use super::qdq::dq_of;
use super::query::{absorb, producers, use_counts};
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
    let xdq = &g.nodes[prod[xf]?];
    let Op::DequantizeLinear(DequantizeLinear { axis: None }) = xdq.op else {
        return None;
    };
    let [xq, one, zx] = xdq.inputs[..] else {
        return None;
    };
    let d = prod[xq]?;
    let dql = &g.nodes[d];
    let ok = matches!(dql.op, Op::DynamicQuantizeLinear(_))
        && dql.outputs[0] == xq
        && dql.outputs[2] == zx
        && const_f32(m, one)? == [1.0];
    if !ok {
        return None;
    }
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
    // s = Mul(sx, sw) (either order), sw a constant: one value or one per column.
    let sm = &g.nodes[prod[s]?];
    if !is_mul(&sm.op) {
        return None;
    }
    let sx = dql.outputs[1];
    let sw = match sm.inputs[..] {
        [a, b] if a == sx => b,
        [a, b] if b == sx => a,
        _ => return None,
    };
    let scale = const_f32(m, sw)?;
    let sw_shape = &g.tensors[sw].shape;
    let per_column = scale.len() == n && sw_shape.last() == Some(&n);
    if !(scale.len() == 1 || per_column) || scale.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    // One scale and one zero point each, or both per column.
    let (w_scale, w_zero_point) = if scale.len() == w.zero_point.len() {
        (scale, w.zero_point)
    } else {
        let at = |v: usize, c: usize| if v == 1 { 0 } else { c };
        (
            (0..n).map(|c| scale[at(scale.len(), c)]).collect(),
            (0..n)
                .map(|c| w.zero_point[at(w.zero_point.len(), c)])
                .collect(),
        )
    };
    Some(Matched {
        x: dql.inputs[0],
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

//! Activation rules: recognise Swish, and fold activations into the producing Conv/Gemm epilogue.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{BinaryOp, Unary, UnaryOp};
use edgefuse_runtime::ir::Op;
use edgefuse_runtime::DType;

use super::query::{absorb, find_pair, producers, use_counts};
use crate::Module;

/// Activations a Conv/Gemm epilogue computes.
pub(super) fn fusable(op: &Op) -> Option<UnaryOp> {
    match op {
        Op::Unary(Unary { op: u }) => match u {
            UnaryOp::Relu
            | UnaryOp::Clip { .. }
            | UnaryOp::HardSwish
            | UnaryOp::HardSigmoid { .. }
            | UnaryOp::Sigmoid
            | UnaryOp::Swish
            | UnaryOp::LeakyRelu { .. }
            | UnaryOp::Tanh
            | UnaryOp::Elu { .. }
            | UnaryOp::Mish
            | UnaryOp::Gelu => Some(*u),
            _ => None,
        },
        _ => None,
    }
}

/// `x · sigmoid(x)` (a Sigmoid read only by a Mul that also reads its input) → `Swish(x)`.
pub fn fuse_swish(m: &mut Module) -> Result<bool> {
    let g = &mut m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    for k in 0..g.nodes.len() {
        let node = &g.nodes[k];
        if !matches!(node.op, Op::Binary(ref b) if b.op == edgefuse_runtime::ir::ops::BinaryOp::Mul)
        {
            continue;
        }
        for (s_pos, x_pos) in [(0, 1), (1, 0)] {
            let (s, x) = (node.inputs[s_pos], node.inputs[x_pos]);
            let Some(p) = prod[s] else { continue };
            let sig = &g.nodes[p];
            if uses[s] == 1
                && matches!(
                    sig.op,
                    Op::Unary(Unary {
                        op: UnaryOp::Sigmoid
                    })
                )
                && sig.inputs[0] == x
            {
                let node = &mut g.nodes[k];
                node.op = Op::Unary(Unary { op: UnaryOp::Swish });
                node.inputs = vec![x];
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `Add(Conv(x), r)` → one Conv that adds the residual `r` in its epilogue, when the Conv's
/// output is read only by the Add, the Conv has no activation yet (an activation after the Add
/// then folds in by `fuse_conv_activation` and applies to the sum), is not grouped, and `r` is
/// f32 of the output's shape. The Conv takes the Add's place, after `r`'s producer.
pub fn fold_residual_add_into_conv(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    for b in 0..g.nodes.len() {
        let node = &g.nodes[b];
        if !matches!(node.op, Op::Binary(ref x) if x.op == BinaryOp::Add) || node.inputs.len() != 2
        {
            continue;
        }
        for (cpos, rpos) in [(0, 1), (1, 0)] {
            let (t, r) = (node.inputs[cpos], node.inputs[rpos]);
            let Some(a) = prod[t] else { continue };
            let Op::Conv(c) = &g.nodes[a].op else {
                continue;
            };
            let (ti, ri) = (&g.tensors[t], &g.tensors[r]);
            if c.act.is_some()
                || c.residual
                || c.group != 1
                || uses[t] != 1
                || t == r
                || g.nodes[a].outputs.len() != 1
                || ti.dtype != DType::F32
                || ri.dtype != DType::F32
                || ri.shape != ti.shape
                || g.tensors[node.outputs[0]].shape != ti.shape
            {
                continue;
            }
            let mut fused = g.nodes[a].clone();
            if let Op::Conv(c) = &mut fused.op {
                c.residual = true;
            }
            fused.inputs.push(r);
            fused.outputs = node.outputs.clone();
            m.graph.nodes[b] = fused;
            m.graph.nodes.remove(a);
            return Ok(true);
        }
    }
    Ok(false)
}

/// Conv → activation (single use) becomes one Conv with the activation as its epilogue.
pub fn fuse_conv_activation(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| matches!(&g.nodes[a].op, Op::Conv(c) if c.act.is_none()),
        |b| fusable(&g.nodes[b].op).is_some(),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let act = fusable(&m.graph.nodes[b].op);
    if let Op::Conv(c) = &mut m.graph.nodes[a].op {
        c.act = act;
    }
    absorb(&mut m.graph, a, b);
    Ok(true)
}

/// Gemm → activation (single use) becomes one Gemm with the activation as its epilogue.
pub fn fuse_gemm_activation(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| matches!(&g.nodes[a].op, Op::Gemm(c) if c.act.is_none()),
        |b| fusable(&g.nodes[b].op).is_some(),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let act = fusable(&m.graph.nodes[b].op);
    if let Op::Gemm(c) = &mut m.graph.nodes[a].op {
        c.act = act;
    }
    absorb(&mut m.graph, a, b);
    Ok(true)
}

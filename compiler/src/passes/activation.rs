//! Activation rules: recognise Swish, and fold activations into the producing Conv/Gemm epilogue.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{Unary, UnaryOp};
use edgefuse_runtime::ir::Op;

use super::query::{absorb, find_pair, producers, use_counts};
use crate::Module;

/// Activations a Conv/Gemm epilogue computes.
fn fusable(op: &Op) -> Option<UnaryOp> {
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

//! MatMul followed by a bias Add becomes one Gemm.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{BinaryOp, Gemm};
use edgefuse_runtime::ir::Op;

use super::query::{producers, use_counts};
use crate::Module;

/// MatMul(A [M,K], B [K,N]) → Add(·, C) with C constant and broadcastable to [M, N]
/// → Gemm(A, B, C).
pub fn fuse_matmul_add_into_gemm(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    for (k, node) in g.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Binary(ref b) if b.op == BinaryOp::Add) {
            continue;
        }
        for (mm_pos, c_pos) in [(0, 1), (1, 0)] {
            let (x, c) = (node.inputs[mm_pos], node.inputs[c_pos]);
            let Some(p) = prod[x] else { continue };
            let mm = &g.nodes[p];
            let (a, b) = match mm.inputs.as_slice() {
                [a, b] if matches!(mm.op, Op::MatMul(_)) => (*a, *b),
                _ => continue,
            };
            let out = &g.tensors[node.outputs[0]];
            let ok = uses[x] == 1
                && m.is_const(c)
                && g.tensors[a].shape.len() == 2
                && g.tensors[b].shape.len() == 2
                && g.tensors[x].shape == out.shape
                && g.tensors[c].shape.len() <= 2;
            if ok {
                let node = &mut m.graph.nodes[k];
                node.op = Op::Gemm(Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_a: false,
                    trans_b: false,
                    act: None,
                });
                node.inputs = vec![a, b, c];
                return Ok(true);
            }
        }
    }
    Ok(false)
}

//! Transpose pairs composed, and cancelled when they undo each other.

use anyhow::Result;
use edgefuse_runtime::ir::ops::Transpose;
use edgefuse_runtime::ir::Op;

use super::query::{find_pair, replace_uses};
use crate::Module;

/// Transpose(p1) → Transpose(p2): one Transpose with the composed permutation, or none at all
/// when the composition is the identity (the NHWC↔NCHW pairs TF exports leave behind).
pub fn cancel_transpose_pairs(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| matches!(g.nodes[a].op, Op::Transpose(_)),
        |b| matches!(g.nodes[b].op, Op::Transpose(_)),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let (Op::Transpose(t1), Op::Transpose(t2)) = (&g.nodes[a].op, &g.nodes[b].op) else {
        unreachable!()
    };
    let perm: Vec<usize> = t2.perm.iter().map(|&i| t1.perm[i]).collect();
    let src = g.nodes[a].inputs[0];
    let out = g.nodes[b].outputs[0];
    let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
    if identity && !g.outputs.contains(&out) {
        replace_uses(&mut m.graph, out, src);
    } else {
        let node = &mut m.graph.nodes[b];
        node.op = Op::Transpose(Transpose { perm });
        node.inputs[0] = src;
    }
    Ok(true)
}

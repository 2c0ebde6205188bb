//! No-op removal and reshape chains.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{Reshape, Unary, UnaryOp};
use edgefuse_runtime::ir::Op;

use super::query::{find_pair, replace_uses};
use crate::Module;

/// Identity nodes and shape-preserving Reshapes vanish (unless they produce a graph output,
/// whose name must survive).
pub fn remove_identity(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    for node in &g.nodes {
        let (x, y) = match (node.inputs.first(), node.outputs.first()) {
            (Some(&x), Some(&y)) => (x, y),
            _ => continue,
        };
        let noop = match &node.op {
            Op::Unary(Unary {
                op: UnaryOp::Identity,
            }) => true,
            Op::Reshape(r) => r.shape == g.tensors[x].shape,
            _ => false,
        };
        if noop && !g.outputs.contains(&y) {
            replace_uses(&mut m.graph, y, x);
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reshape → Reshape becomes one Reshape from the first's input.
pub fn merge_reshapes(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| matches!(g.nodes[a].op, Op::Reshape(Reshape { .. })),
        |b| matches!(g.nodes[b].op, Op::Reshape(_)),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let src = m.graph.nodes[a].inputs[0];
    m.graph.nodes[b].inputs[0] = src;
    Ok(true)
}

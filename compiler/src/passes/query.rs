//! Lookups the rewrite rules share: who produces a tensor, who reads it.

use edgefuse_runtime::ir::{Graph, TensorId};

/// For each tensor, the index of the node producing it.
pub fn producers(g: &Graph) -> Vec<Option<usize>> {
    let mut p = vec![None; g.tensors.len()];
    for (k, n) in g.nodes.iter().enumerate() {
        for &o in &n.outputs {
            p[o] = Some(k);
        }
    }
    p
}

/// For each tensor, how many node inputs read it, plus one if it is a graph output.
pub fn use_counts(g: &Graph) -> Vec<usize> {
    let mut c = vec![0; g.tensors.len()];
    for n in &g.nodes {
        for &i in &n.inputs {
            c[i] += 1;
        }
    }
    for &o in &g.outputs {
        c[o] += 1;
    }
    c
}

/// Finds a node `b` whose first input is the single-use output of node `a`, with `a` matching
/// `first` and `b` matching `second`. Returns (a, b).
pub fn find_pair(
    g: &Graph,
    first: impl Fn(usize) -> bool,
    second: impl Fn(usize) -> bool,
) -> Option<(usize, usize)> {
    let prod = producers(g);
    let uses = use_counts(g);
    for (b, node) in g.nodes.iter().enumerate() {
        let Some(&x) = node.inputs.first() else {
            continue;
        };
        if let Some(a) = prod[x] {
            if uses[x] == 1 && g.nodes[a].outputs.len() == 1 && first(a) && second(b) {
                return Some((a, b));
            }
        }
    }
    None
}

/// Makes node `a` produce node `b`'s outputs and deletes `b` (the caller has folded `b` into `a`).
/// `a`'s former output becomes dead and is pruned by the driver.
pub fn absorb(g: &mut Graph, a: usize, b: usize) {
    let outs = g.nodes[b].outputs.clone();
    g.nodes[a].outputs = outs;
    g.nodes.remove(b);
}

/// Replaces every read of `from` by `to` (graph outputs included).
pub fn replace_uses(g: &mut Graph, from: TensorId, to: TensorId) {
    for n in &mut g.nodes {
        for i in &mut n.inputs {
            if *i == from {
                *i = to;
            }
        }
    }
    for o in &mut g.outputs {
        if *o == from {
            *o = to;
        }
    }
}

//! Transpose pairs composed, and cancelled when they undo each other.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{Reshape, Transpose};
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

/// A Transpose that keeps the order of every dimension longer than 1 (e.g. `[1, T, C]` →
/// `[T, 1, C]`, what batch-1 exports of `batch_first` RNNs carry) moves no data: it becomes a
/// Reshape, which both runtimes execute as a view.
pub fn transpose_to_reshape(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    for (i, node) in g.nodes.iter().enumerate() {
        let Op::Transpose(t) = &node.op else { continue };
        // A view of a graph input that is (or feeds) a graph output would alias the caller's
        // input buffer, which the planner refuses: keep such a Transpose a copy.
        if g.inputs.contains(&node.inputs[0]) || g.outputs.contains(&node.outputs[0]) {
            continue;
        }
        let shape = &g.tensors[node.inputs[0]].shape;
        if t.perm.len() != shape.len() {
            continue;
        }
        let kept: Vec<usize> = t.perm.iter().copied().filter(|&p| shape[p] > 1).collect();
        if kept.windows(2).all(|w| w[0] < w[1]) {
            let shape = t.perm.iter().map(|&p| shape[p]).collect();
            m.graph.nodes[i].op = Op::Reshape(Reshape { shape });
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgefuse_runtime::ir::{Fact, Node};
    use edgefuse_runtime::tensor::DType;

    /// input → Identity → Transpose → Identity → output, or the Transpose alone between the
    /// graph's input and output when `bare`.
    fn transpose(shape: &[usize], perm: &[usize], bare: bool) -> Module {
        let mut m = Module::default();
        let f = |s: Vec<usize>| Fact::new(DType::F32, s);
        let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let x = m.add_value("x", f(shape.to_vec()));
        m.graph.inputs.push(x);
        let node = |name: &str, op: Op, i: usize, o: usize| Node {
            name: name.into(),
            op,
            inputs: vec![i],
            outputs: vec![o],
        };
        let identity = || {
            Op::Unary(edgefuse_runtime::ir::ops::Unary {
                op: edgefuse_runtime::ir::ops::UnaryOp::Identity,
            })
        };
        let t_op = Op::Transpose(Transpose {
            perm: perm.to_vec(),
        });
        if bare {
            let y = m.add_value("y", f(out));
            m.graph.nodes.push(node("t", t_op, x, y));
            m.graph.outputs.push(y);
            return m;
        }
        let a = m.add_value("a", f(shape.to_vec()));
        let b = m.add_value("b", f(out.clone()));
        let y = m.add_value("y", f(out));
        m.graph.nodes.push(node("i0", identity(), x, a));
        m.graph.nodes.push(node("t", t_op, a, b));
        m.graph.nodes.push(node("i1", identity(), b, y));
        m.graph.outputs.push(y);
        m
    }

    #[test]
    fn a_transpose_moving_only_unit_dims_becomes_a_reshape() {
        let mut m = transpose(&[1, 20, 128], &[1, 0, 2], false);
        assert!(transpose_to_reshape(&mut m).unwrap());
        let Op::Reshape(r) = &m.graph.nodes[1].op else {
            panic!("not a Reshape: {:?}", m.graph.nodes[1].op)
        };
        assert_eq!(r.shape, vec![20, 1, 128]);
        // Batch 2 moves data: left alone.
        let mut m = transpose(&[2, 20, 128], &[1, 0, 2], false);
        assert!(!transpose_to_reshape(&mut m).unwrap());
        // Two long dims swapped around a unit one: left alone.
        let mut m = transpose(&[4, 1, 3], &[2, 1, 0], false);
        assert!(!transpose_to_reshape(&mut m).unwrap());
        // Straight from the graph's input to its output: a view would alias the caller's
        // input, so it stays a copy.
        let mut m = transpose(&[1, 20, 128], &[1, 0, 2], true);
        assert!(!transpose_to_reshape(&mut m).unwrap());
    }
}

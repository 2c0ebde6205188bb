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

    fn transpose(shape: &[usize], perm: &[usize]) -> Module {
        let mut m = Module::default();
        let x = m.add_value("x", Fact::new(DType::F32, shape.to_vec()));
        let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let y = m.add_value("y", Fact::new(DType::F32, out));
        m.graph.inputs.push(x);
        m.graph.outputs.push(y);
        m.graph.nodes.push(Node {
            name: "t".into(),
            op: Op::Transpose(Transpose {
                perm: perm.to_vec(),
            }),
            inputs: vec![x],
            outputs: vec![y],
        });
        m
    }

    #[test]
    fn a_transpose_moving_only_unit_dims_becomes_a_reshape() {
        let mut m = transpose(&[1, 20, 128], &[1, 0, 2]);
        assert!(transpose_to_reshape(&mut m).unwrap());
        let Op::Reshape(r) = &m.graph.nodes[0].op else {
            panic!("not a Reshape: {:?}", m.graph.nodes[0].op)
        };
        assert_eq!(r.shape, vec![20, 1, 128]);
        // Batch 2 moves data: left alone.
        let mut m = transpose(&[2, 20, 128], &[1, 0, 2]);
        assert!(!transpose_to_reshape(&mut m).unwrap());
        // Two long dims swapped around a unit one: left alone.
        let mut m = transpose(&[4, 1, 3], &[2, 1, 0]);
        assert!(!transpose_to_reshape(&mut m).unwrap());
    }
}

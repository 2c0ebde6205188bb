//! Static memory plan: where every tensor lives during an inference.
//!
//! Constants stay in the model file. Every other tensor gets an offset in one arena, chosen by
//! liveness: two tensors share bytes only when their lifetimes (first write to last read, in node
//! order) do not overlap. Views (Reshape) alias their input's storage and extend its lifetime.
//! One scratch region, sized for the hungriest kernel, follows the tensors.

use crate::ir::{Graph, TensorId};
use crate::{Error, Result};

/// Where one tensor's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A constant, read from the model file.
    Const(TensorId),
    /// `len` bytes at `offset` in the arena.
    Arena { offset: usize, len: usize },
}

/// The memory plan of one graph.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    pub slots: Vec<Slot>,
    /// Bytes for all arena tensors (scratch excluded).
    pub tensor_bytes: usize,
    /// Offset and size of the scratch region.
    pub scratch_offset: usize,
    pub scratch_bytes: usize,
    /// What the arena would need without reuse (for `inspect`).
    pub unshared_bytes: usize,
}

impl MemoryPlan {
    pub fn arena_bytes(&self) -> usize {
        self.scratch_offset + self.scratch_bytes
    }
}

const ALIGN: usize = 64;

/// Plans `graph` with `scratch` bytes of kernel scratch.
pub fn plan(graph: &Graph, scratch: usize) -> Result<MemoryPlan> {
    plan_in_place(graph, scratch, &[])
}

/// [`plan`], where each (output, input) pair of `in_place` shares memory when the input's
/// value has no reader after the node writing the output, both are the same size, and
/// neither is a graph input, a graph output or a constant (a kernel computing `y += f(x)`
/// with y holding the input then needs no copy). Pairs that do not qualify get memory of
/// their own, as in [`plan`].
pub fn plan_in_place(
    graph: &Graph,
    scratch: usize,
    in_place: &[(TensorId, TensorId)],
) -> Result<MemoryPlan> {
    let n = graph.tensors.len();
    let nodes = graph.nodes.len();
    // Root storage of each tensor (views resolve to their input's root).
    let mut root = graph.storage_roots();
    for &(o, i) in in_place {
        if shares(graph, &root, o, i) {
            let (from, to) = (root[o], root[i]);
            root.iter_mut()
                .filter(|r| **r == from)
                .for_each(|r| *r = to);
        }
    }
    // Lifetime of each root, in "time" units: inputs live from 0, node k writes at k + 1.
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for &i in &graph.inputs {
        first[root[i]] = 0;
    }
    for (k, node) in graph.nodes.iter().enumerate() {
        let t = k + 1;
        for &i in &node.inputs {
            last[root[i]] = last[root[i]].max(t);
        }
        for &o in &node.outputs {
            let r = root[o];
            first[r] = first[r].min(t);
            last[r] = last[r].max(t);
        }
    }
    for &o in &graph.outputs {
        last[root[o]] = nodes + 1;
    }
    for &i in &graph.inputs {
        // Inputs are written by the caller and must survive the run: `run` may be called again
        // on the same inputs.
        last[root[i]] = nodes + 1;
    }

    // Roots that need arena space, largest first (ties by earliest start): greedy first fit.
    let mut order: Vec<TensorId> = (0..n)
        .filter(|&t| root[t] == t && graph.tensors[t].weight.is_none() && first[t] != usize::MAX)
        .collect();
    order.sort_by_key(|&t| (std::cmp::Reverse(graph.tensors[t].byte_len()), first[t]));
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // offset, len, first, last
    let mut offsets = vec![usize::MAX; n];
    let mut tensor_bytes = 0;
    let mut unshared = 0;
    for &t in &order {
        let len = graph.tensors[t].byte_len().div_ceil(ALIGN) * ALIGN;
        unshared += len;
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|p| p.2 <= last[t] && first[t] <= p.3)
            .map(|p| (p.0, p.1))
            .collect();
        conflicts.sort_unstable();
        let mut offset = 0;
        for (o, l) in conflicts {
            if offset + len <= o {
                break;
            }
            offset = offset.max(o + l);
        }
        placed.push((offset, len, first[t], last[t]));
        offsets[t] = offset;
        tensor_bytes = tensor_bytes.max(offset + len);
    }

    let mut slots = Vec::with_capacity(n);
    for (t, &r) in root.iter().enumerate() {
        let slot = if graph.tensors[r].weight.is_some() {
            Slot::Const(r)
        } else if offsets[r] == usize::MAX {
            // Never written (an unused tensor): give it no space; nothing reads it.
            Slot::Arena { offset: 0, len: 0 }
        } else {
            Slot::Arena {
                offset: offsets[r],
                len: graph.tensors[t].byte_len(),
            }
        };
        slots.push(slot);
    }
    // A view may not be a graph output aliasing a graph input: the caller would see its input
    // change under it. The compiler inserts an Identity copy in that case.
    for &o in &graph.outputs {
        if graph.inputs.iter().any(|&i| root[i] == root[o]) {
            return Err(Error::invalid(format!(
                "output \"{}\" aliases a graph input",
                graph.tensors[o].name
            )));
        }
    }
    Ok(MemoryPlan {
        slots,
        tensor_bytes,
        scratch_offset: tensor_bytes.div_ceil(ALIGN) * ALIGN,
        scratch_bytes: scratch.div_ceil(ALIGN) * ALIGN,
        unshared_bytes: unshared,
    })
}

/// Whether output `o` may take input `i`'s memory (see [`plan_in_place`]).
fn shares(graph: &Graph, root: &[TensorId], o: TensorId, i: TensorId) -> bool {
    let Some(k) = graph.nodes.iter().position(|n| n.outputs.contains(&o)) else {
        return false;
    };
    let (ro, ri) = (root[o], root[i]);
    let io = |r: TensorId| {
        graph
            .inputs
            .iter()
            .chain(&graph.outputs)
            .any(|&t| root[t] == r)
    };
    let read_later = graph.nodes[k + 1..]
        .iter()
        .any(|n| n.inputs.iter().any(|&t| root[t] == ri));
    // The node reads i's memory through i alone: a second input there (the same tensor as
    // data and residual, or a view of it) would be overwritten while it is read.
    let reads_ri = graph.nodes[k]
        .inputs
        .iter()
        .filter(|&&t| root[t] == ri)
        .count();
    ro != ri
        && graph.nodes[k].inputs.contains(&i)
        && reads_ri == 1
        && !read_later
        && !io(ro)
        && !io(ri)
        && graph.tensors[ri].weight.is_none()
        && graph.tensors[ro].byte_len() == graph.tensors[ri].byte_len()
        && graph.tensors[o].byte_len() == graph.tensors[i].byte_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ops::{Reshape, Unary, UnaryOp};
    use crate::ir::{Node, Op};
    use crate::testing::info as t;

    /// x → relu → a → relu → b → reshape → c → relu → d (output).
    fn chain() -> Graph {
        let relu = || Op::Unary(Unary { op: UnaryOp::Relu });
        Graph {
            tensors: vec![
                t("x", &[1000]),
                t("a", &[1000]),
                t("b", &[1000]),
                t("c", &[10, 100]),
                t("d", &[10, 100]),
            ],
            nodes: vec![
                Node {
                    name: "r1".into(),
                    op: relu(),
                    inputs: vec![0],
                    outputs: vec![1],
                },
                Node {
                    name: "r2".into(),
                    op: relu(),
                    inputs: vec![1],
                    outputs: vec![2],
                },
                Node {
                    name: "v".into(),
                    op: Op::Reshape(Reshape {
                        shape: vec![10, 100],
                    }),
                    inputs: vec![2],
                    outputs: vec![3],
                },
                Node {
                    name: "r3".into(),
                    op: relu(),
                    inputs: vec![3],
                    outputs: vec![4],
                },
            ],
            inputs: vec![0],
            outputs: vec![4],
        }
    }

    fn range(s: Slot) -> std::ops::Range<usize> {
        match s {
            Slot::Arena { offset, len } => offset..offset + len,
            Slot::Const(_) => panic!("not in the arena"),
        }
    }

    #[test]
    fn in_place_pairs_share_memory_only_when_the_input_dies_there() {
        let g = chain();
        let p = plan_in_place(&g, 0, &[(2, 1), (4, 3), (1, 0)]).unwrap();
        // b takes a's memory (a's last reader writes b), and b's view c with it.
        assert_eq!(range(p.slots[2]), range(p.slots[1]));
        assert_eq!(range(p.slots[3]).start, range(p.slots[1]).start);
        // d is the graph's output, x its input: neither shares.
        assert!(range(p.slots[4]).start != range(p.slots[3]).start);
        assert!(range(p.slots[1]).start != range(p.slots[0]).start);
        // a read again after b is written: b gets its own memory.
        let mut g = chain();
        g.nodes[3].inputs.push(1);
        let p = plan_in_place(&g, 0, &[(2, 1)]).unwrap();
        let (a, b) = (range(p.slots[1]), range(p.slots[2]));
        assert!(a.end <= b.start || b.end <= a.start, "{a:?} {b:?}");
        // A pair of tensors of different sizes, or one the node does not read: refused.
        let p = plan_in_place(&g, 0, &[(3, 1), (4, 1)]).unwrap();
        assert!(range(p.slots[4]).start != range(p.slots[1]).start);
        // A node reading a twice (as data and residual, say): b would overwrite a as it reads.
        let mut g = chain();
        g.nodes[1].inputs.push(1);
        let p = plan_in_place(&g, 0, &[(2, 1)]).unwrap();
        let (a, b) = (range(p.slots[1]), range(p.slots[2]));
        assert!(a.end <= b.start || b.end <= a.start, "{a:?} {b:?}");
    }

    #[test]
    fn live_tensors_are_disjoint_dead_ones_are_reused_views_alias() {
        let g = chain();
        g.validate().unwrap();
        let p = plan(&g, 256).unwrap();
        let r: Vec<_> = p.slots.iter().map(|&s| range(s)).collect();
        let disjoint = |a: &std::ops::Range<usize>, b: &std::ops::Range<usize>| {
            a.end <= b.start || b.end <= a.start
        };
        // Each node's input and output are live together.
        assert!(disjoint(&r[0], &r[1]) && disjoint(&r[1], &r[2]) && disjoint(&r[3], &r[4]));
        // The input survives the whole run (it may be run again): nothing else shares its bytes.
        assert!((1..5).all(|i| disjoint(&r[0], &r[i])));
        // The reshape is a view: same bytes as its input.
        assert_eq!(r[2], r[3]);
        // Besides the input, three 4000-byte tensors alive at most two at a time: two slots.
        assert_eq!(p.tensor_bytes, 3 * 4032);
        assert!(p.unshared_bytes > p.tensor_bytes);
        assert!(p.scratch_offset >= p.tensor_bytes && p.scratch_bytes == 256);
    }
}

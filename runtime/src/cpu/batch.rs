//! Cutting a batch between threads at the graph level.
//!
//! Where every node of a graph treats the items of its batch independently (convolutions,
//! pooling, row-wise products, element-wise ops, recurrences over batch-first sequences…), `T`
//! threads can each run the whole graph on their own `N / T` items, one thread per part and
//! no fork inside: nothing is shared between the threads but the weights, and each part's
//! activations stay in the cache of the core that made them. Splitting every layer between the
//! threads instead forks and joins once per layer and hands each layer's output to the other
//! core; on a virtual machine whose two cores are far apart (the benchmark host, some minutes)
//! that made the seed CNN (batch 16) twice as slow at 2 threads as at 1.
//!
//! [`split`] decides from the graph alone, by a rule per op, and returns the graph of one part
//! (the batched tensors' first dimension cut to `N / T`, the attributes that name it rewritten),
//! checked against each op's own shape inference. Anything it does not know keeps the graph
//! whole.

use crate::ir::ops::Op;
use crate::ir::{Fact, Graph};

/// The graph of one of `parts` equal parts of the batch, or why the graph cannot be cut: its
/// inputs do not share a first dimension that `parts` divides, an op mixes the items of a batch
/// (or is not known to keep them apart), or an output does not carry the batch. Tensors
/// computed from constants alone are the same in every part.
pub(crate) fn split(graph: &Graph, parts: usize) -> Result<Graph, String> {
    let n = batch_of(graph)?;
    if parts < 2 || n < parts || n % parts != 0 {
        return Err(format!("a batch of {n} does not divide into {parts} parts"));
    }
    let sub = n / parts;
    let mut batched = vec![false; graph.tensors.len()];
    for &i in &graph.inputs {
        batched[i] = true;
    }
    let mut out = graph.clone();
    for &i in &graph.inputs {
        out.tensors[i].shape[0] = sub;
    }
    for (k, node) in graph.nodes.iter().enumerate() {
        let flags: Vec<bool> = node.inputs.iter().map(|&i| batched[i]).collect();
        if !flags.iter().any(|&b| b) {
            // Computed from constants alone: every part computes the same values.
            continue;
        }
        let mixes = || {
            format!(
                "node {k} \"{}\" ({}) does not keep the items of the batch apart",
                node.name,
                node.op.name()
            )
        };
        if node
            .outputs
            .iter()
            .any(|&o| graph.tensors[o].shape.first() != Some(&n))
        {
            return Err(mixes());
        }
        let ins: Vec<Fact> = node
            .inputs
            .iter()
            .map(|&i| graph.tensors[i].fact())
            .collect();
        let op = part_op(&node.op, &ins, &flags, n, sub).ok_or_else(mixes)?;
        let sub_ins: Vec<Fact> = node.inputs.iter().map(|&i| out.tensors[i].fact()).collect();
        let got = op.infer(&sub_ins).map_err(|_| mixes())?;
        if got.len() != node.outputs.len() {
            return Err(mixes());
        }
        for (&o, f) in node.outputs.iter().zip(&got) {
            let mut want = graph.tensors[o].fact();
            want.shape[0] = sub;
            if *f != want {
                return Err(mixes());
            }
            out.tensors[o].shape[0] = sub;
            batched[o] = true;
        }
        out.nodes[k].op = op;
    }
    if let Some(&o) = graph.outputs.iter().find(|&&o| !batched[o]) {
        let name = &graph.tensors[o].name;
        return Err(format!("output \"{name}\" does not carry the batch"));
    }
    Ok(out)
}

/// The batch: the first dimension every graph input shares.
fn batch_of(graph: &Graph) -> Result<usize, String> {
    let first = graph.inputs.first().ok_or("the graph has no inputs")?;
    let n = graph.tensors[*first].shape.first().copied();
    match n {
        Some(n)
            if graph
                .inputs
                .iter()
                .all(|&i| graph.tensors[i].shape.first() == Some(&n)) =>
        {
            Ok(n)
        }
        _ => Err("the inputs do not share a first dimension".into()),
    }
}

/// The thread counts (up to `max`) between which the batch can be cut, or why none: for
/// `inspect`.
pub fn thread_counts(graph: &Graph, max: usize) -> Result<Vec<usize>, String> {
    let n = batch_of(graph)?;
    if n < 2 {
        return Err(format!("the batch is {n}"));
    }
    let mut counts = Vec::new();
    let mut why = String::new();
    for t in (2..=n.min(max)).filter(|t| n % t == 0) {
        match split(graph, t) {
            Ok(_) => counts.push(t),
            Err(e) => why = e,
        }
    }
    if counts.is_empty() {
        if why.is_empty() {
            why = format!("no thread count up to {max} divides a batch of {n}");
        }
        return Err(why);
    }
    Ok(counts)
}

/// `op` for a part of `sub` items of a batch of `n`, where `batched[i]` says which inputs carry
/// the batch as their first dimension (`ins` their whole facts); `None` where the op would mix
/// items or is not known not to.
fn part_op(op: &Op, ins: &[Fact], batched: &[bool], n: usize, sub: usize) -> Option<Op> {
    let rank = ins[0].rank();
    // Only the first input (the data) carries the batch; the rest are parameters.
    let data_only = batched[0] && !batched[1..].iter().any(|&b| b);
    // Inputs that do not carry the batch broadcast over it (a leading 1 or fewer dimensions).
    let broadcasts = |out_rank: usize| {
        ins.iter()
            .zip(batched)
            .all(|(f, &b)| b || f.rank() < out_rank || f.shape.first() == Some(&1))
    };
    let mut op = op.clone();
    let ok = match &mut op {
        Op::Conv(c) => {
            // The residual (last input) is shaped like the output, batch included.
            let last = batched.len() - 1;
            batched[0]
                && batched
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| !b || i == 0 || (c.residual && i == last))
        }
        Op::ConvTranspose(_)
        | Op::Pool(_)
        | Op::GlobalPool(_)
        | Op::BatchNorm(_)
        | Op::QConv(_)
        | Op::QPool(_)
        | Op::Unary(_)
        | Op::Cast(_) => data_only,
        Op::Binary(_) | Op::Where(_) | Op::QAdd(_) => {
            let out_rank = ins.iter().map(Fact::rank).max().unwrap_or(0);
            ins.iter()
                .zip(batched)
                .all(|(f, &b)| !b || f.rank() == out_rank)
                && broadcasts(out_rank)
        }
        Op::Softmax(s) => data_only && s.axis != 0,
        Op::ArgReduce(a) => data_only && a.axis != 0,
        Op::TopK(t) => data_only && t.axis != 0,
        Op::CumSum(c) => data_only && c.axis != 0,
        Op::LpNorm(l) => data_only && l.axis != 0,
        // Each item's own rows (LayerNorm from axis 1 on) or planes (InstanceNorm); the
        // parameters are not batched.
        Op::LayerNorm(l) => data_only && l.axis != 0,
        Op::InstanceNorm(_) => data_only,
        // Batched indices into batched data, along a later axis.
        Op::GatherElements(g) => g.axis != 0 && batched[0] && batched[1],
        Op::Reduce(r) => data_only && !r.axes.contains(&0),
        Op::Transpose(t) => data_only && t.perm.first() == Some(&0),
        Op::Split(s) => data_only && s.axis != 0,
        Op::Concat(c) => c.axis != 0 && batched.iter().all(|&b| b),
        Op::Pad(p) => data_only && p.pads.first() == Some(&0) && p.pads.get(rank) == Some(&0),
        Op::QuantizeLinear(q) => data_only && q.axis != Some(0),
        Op::DequantizeLinear(q) => data_only && q.axis != Some(0),
        // One range over the whole tensor, every item of the batch included.
        Op::DynamicQuantizeLinear(_)
        | Op::DynamicQuantizeMatMul(_)
        | Op::DynamicQuantizeConv(_) => false,
        // A bias C broadcasts over the rows.
        Op::Gemm(g) => {
            data_only && !g.trans_a && ins.get(2).is_none_or(|c| c.rank() < 2 || c.shape[0] == 1)
        }
        Op::QGemm(_) => data_only && rank == 2,
        Op::MatMul(_) => data_only && rank >= 2 && ins[1].rank() <= 2,
        // Rows of a table picked by batched indices, or batched rows picked along a later axis.
        Op::Gather(g) => {
            (g.axis == 0 && !batched[0] && batched[1]) || (g.axis > 0 && batched[0] && !batched[1])
        }
        Op::QGather(_) => !batched[0] && batched[1],
        Op::Lstm(l) => data_only && l.batch_first && !l.has_h0 && !l.has_c0,
        Op::QLstm(q) => data_only && q.lstm.batch_first && !q.lstm.has_h0 && !q.lstm.has_c0,
        Op::Gru(g) => data_only && g.batch_first && !g.has_h0,
        Op::QGru(q) => data_only && q.gru.batch_first && !q.gru.has_h0,
        // Row-major: a first dimension kept keeps each item's elements together.
        Op::Reshape(r) => data_only && cut(&mut r.shape, n, sub),
        // Of the same rank: a higher one would line the input's first dimension up with a later
        // one of the output (x [2, 3] expanded to [2, 2, 3] repeats x whole along the first).
        Op::Expand(e) => data_only && e.shape.len() == rank && cut(&mut e.shape, n, sub),
        Op::Slice(s) => {
            data_only
                && s.starts.first() == Some(&0)
                && s.steps.first() == Some(&1)
                && cut(&mut s.lens, n, sub)
        }
        // The batch axis must map onto itself: scale 1 under a coordinate rule that keeps
        // integers (TensorFlow's half-pixel for nearest moves every index by half a step, and
        // so reads the next item).
        Op::Resize(r) => {
            // An axis of scale 1 keeps its indices under every coordinate rule (cpu Resize).
            data_only && r.scales.first().is_none_or(|&s| s == 1.0) && cut(&mut r.out_shape, n, sub)
        }
    };
    ok.then_some(op)
}

/// Rewrites a first dimension of `n` to `sub`; false if it is not `n`.
fn cut(shape: &mut [usize], n: usize, sub: usize) -> bool {
    match shape.first_mut() {
        Some(d) if *d == n => {
            *d = sub;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;

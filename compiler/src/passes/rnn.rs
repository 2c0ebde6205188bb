//! An LSTM fed by an embedding lookup takes its input projection from a pre-projected table.

use anyhow::Result;
use edgefuse_runtime::ir::ops::Reshape;
use edgefuse_runtime::ir::{Op, TensorId};
use edgefuse_runtime::{DType, Tensor};

use super::query::{producers, replace_uses, use_counts};
use crate::Module;

/// Largest projected table, in floats (16 MB).
const MAX_TABLE: usize = 1 << 22;

/// Gather(E, ids) → [Transpose or Reshape keeping the last axis] → LSTM, with E, W and the bias constant:
/// the table becomes `E' = E·W_dᵀ + Wb_d` per direction (`[V, D·4H]`), W a column selection
/// (`[D, 4H, D·4H]`, `W_d[j][d·4H + j] = 1`) and Wb zero. The LSTM then computes
/// `X·Wᵀ = E'[ids]` exactly (one 1 per row; the zeros add nothing), and a runtime that sees the
/// selection (`cpu::ops::recurrent`) skips the projection: for a batch-1 text model it was over
/// a third of the LSTM's time. Readers that do not look for it still get the same answer from a
/// real product. Not applied when the table would pass [`MAX_TABLE`] floats, when E's width is
/// already `D·4H` (so the rule fires once), or when an intermediate has other readers.
pub fn fold_embedding_into_lstm(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    let f32_const = |t: TensorId| m.is_const(t) && g.tensors[t].dtype == DType::F32;
    let mut found = None;
    for (l, node) in g.nodes.iter().enumerate() {
        let Op::Lstm(op) = &node.op else { continue };
        let x = node.inputs[0];
        // X itself from the Gather, or through one Transpose that keeps the last axis last (or
        // the Reshape `transpose_to_reshape` made of one, keeping the last dimension).
        let last = |t: TensorId| g.tensors[t].shape.last().copied();
        let (transpose, gathered) = match prod[x].map(|p| (p, &g.nodes[p].op)) {
            Some((p, Op::Transpose(t))) if t.perm.last() == Some(&(t.perm.len() - 1)) => {
                (Some(p), g.nodes[p].inputs[0])
            }
            Some((p, Op::Reshape(_))) if last(g.nodes[p].inputs[0]) == last(x) => {
                (Some(p), g.nodes[p].inputs[0])
            }
            _ => (None, x),
        };
        let Some(gn) = prod[gathered] else { continue };
        let gather = &g.nodes[gn];
        let table = gather.inputs[0];
        let ok = matches!(&gather.op, Op::Gather(o) if o.axis == 0)
            && f32_const(table)
            && g.tensors[table].shape.len() == 2
            && uses[gathered] == 1
            && (transpose.is_none() || uses[x] == 1)
            && f32_const(node.inputs[1])
            && (!op.has_bias || f32_const(node.inputs[3]));
        let (d, gh) = (op.direction.count(), 4 * op.hidden);
        let (v, i) = (g.tensors[table].shape[0], g.tensors[table].shape[1]);
        if ok && i != d * gh && v * d * gh <= MAX_TABLE {
            found = Some((l, transpose, gn, x, gathered));
            break;
        }
    }
    let Some((l, transpose, gn, x, gathered)) = found else {
        return Ok(false);
    };
    let Op::Lstm(op) = m.graph.nodes[l].op.clone() else {
        unreachable!()
    };
    let (d, gh) = (op.direction.count(), 4 * op.hidden);
    let n = d * gh;
    let table = m.graph.nodes[gn].inputs[0];
    let (v, i) = (
        m.graph.tensors[table].shape[0],
        m.graph.tensors[table].shape[1],
    );
    let e = m.consts[table].as_ref().unwrap().to_f32_vec()?;
    let w_id = m.graph.nodes[l].inputs[1];
    let w = m.consts[w_id].as_ref().unwrap().to_f32_vec()?;
    let bias_id = op.has_bias.then(|| m.graph.nodes[l].inputs[3]);
    let mut bias = match bias_id {
        Some(b) => m.consts[b].as_ref().unwrap().to_f32_vec()?,
        None => Vec::new(),
    };
    // E'[r][c] = Σ_i E[r][i]·W[c][i] + Wb[c], c = d·4H + j, summed in f64.
    let mut projected = vec![0f32; v * n];
    for (row, out) in projected.chunks_exact_mut(n).enumerate() {
        let er = &e[row * i..][..i];
        for (c, o) in out.iter_mut().enumerate() {
            let wr = &w[c * i..][..i];
            let mut acc: f64 = er.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
            if !bias.is_empty() {
                let (dir, j) = (c / gh, c % gh);
                acc += bias[dir * 2 * gh + j] as f64;
            }
            *o = acc as f32;
        }
    }
    let mut select = vec![0f32; d * gh * n];
    for c in 0..n {
        select[c * n + c] = 1.0;
    }
    for dir in 0..d {
        if !bias.is_empty() {
            bias[dir * 2 * gh..][..gh].fill(0.0);
        }
    }
    let name = m.graph.nodes[l].name.clone();
    let t_id = m.add_const(
        format!("{name}.projected_table"),
        Tensor::from_vec(&[v, n], projected)?,
    );
    let s_id = m.add_const(
        format!("{name}.W_selection"),
        Tensor::from_vec(&[d, gh, n], select)?,
    );
    m.graph.nodes[gn].inputs[0] = t_id;
    m.graph.nodes[l].inputs[1] = s_id;
    if bias_id.is_some() {
        let b_id = m.add_const(
            format!("{name}.B_recurrent"),
            Tensor::from_vec(&[d, 2 * gh], bias)?,
        );
        m.graph.nodes[l].inputs[3] = b_id;
    }
    // The gathered rows (and their transpose or reshape) are now D·4H wide.
    for t in [Some(gathered), transpose.map(|_| x)].into_iter().flatten() {
        if let Some(last) = m.graph.tensors[t].shape.last_mut() {
            *last = n;
        }
    }
    if let Some(Op::Reshape(r)) = transpose.map(|p| &mut m.graph.nodes[p].op) {
        if let Some(last) = r.shape.last_mut() {
            *last = n;
        }
    }
    Ok(true)
}

/// Transpose(1, 0, 2) → LSTM (time-major) → Y → Reshape `[T, B, H]` → Transpose(1, 0, 2): what
/// batch-first models (Keras, PyTorch `batch_first=True`) export. The LSTM then reads X and
/// writes Y batch-major itself (ONNX `layout = 1`) and both transposes go: at the seed LSTM's
/// batch 16 they were 6 % of its CPU time. One direction, no initial states, Y_h and Y_c unread
/// (their layout changes too).
pub fn lstm_to_batch_first(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let prod = producers(g);
    let uses = use_counts(g);
    let reader = |t: TensorId| g.nodes.iter().position(|n| n.inputs.contains(&t));
    let swaps = |n: usize| matches!(&g.nodes[n].op, Op::Transpose(t) if t.perm == [1, 0, 2]);
    let mut found = None;
    for (l, node) in g.nodes.iter().enumerate() {
        let Op::Lstm(op) = &node.op else { continue };
        if op.batch_first || op.direction.count() != 1 || op.has_h0 || op.has_c0 {
            continue;
        }
        let (x, y) = (node.inputs[0], node.outputs[0]);
        if node.outputs[1..].iter().any(|&t| uses[t] > 0) || uses[x] != 1 || uses[y] != 1 {
            continue;
        }
        let Some(t1) = prod[x].filter(|&p| swaps(p)) else {
            continue;
        };
        let Some(rs) = reader(y) else { continue };
        let ys = &g.tensors[y].shape;
        let (t, b, h) = (ys[0], ys[2], ys[3]);
        if !matches!(&g.nodes[rs].op, Op::Reshape(r) if r.shape == [t, b, h]) {
            continue;
        }
        let ry = g.nodes[rs].outputs[0];
        let Some(t2) = reader(ry).filter(|&n| swaps(n) && uses[ry] == 1) else {
            continue;
        };
        if g.outputs.contains(&g.nodes[t2].outputs[0]) {
            continue;
        }
        found = Some((l, t1, rs, t2, [t, b, h]));
        break;
    }
    let Some((l, t1, rs, t2, [t, b, h])) = found else {
        return Ok(false);
    };
    let g = &mut m.graph;
    let Op::Lstm(op) = &mut g.nodes[l].op else {
        unreachable!()
    };
    op.batch_first = true;
    g.nodes[l].inputs[0] = g.nodes[t1].inputs[0];
    let outs = g.nodes[l].outputs.clone();
    g.tensors[outs[0]].shape = vec![b, t, 1, h];
    for &s in &outs[1..] {
        g.tensors[s].shape = vec![b, 1, h];
    }
    let ry = g.nodes[rs].outputs[0];
    g.nodes[rs].op = Op::Reshape(Reshape {
        shape: vec![b, t, h],
    });
    g.tensors[ry].shape = vec![b, t, h];
    let swapped = g.nodes[t2].outputs[0];
    replace_uses(g, swapped, ry);
    Ok(true)
}

/// An LSTM's initial h or c that is a constant of zeros (what PyTorch exports for `lstm(x)`:
/// a ConstantOfShape) is no input at all: the state starts at zero anyway. Frees the LSTM of a
/// layout-bound input ([`lstm_to_batch_first`]) and of a copy per run.
pub fn drop_zero_lstm_states(m: &mut Module) -> Result<bool> {
    let zeros = |m: &Module, t: TensorId| {
        m.consts[t]
            .as_ref()
            .is_some_and(|c| c.to_f32_vec().is_ok_and(|v| v.iter().all(|&x| x == 0.0)))
    };
    for l in 0..m.graph.nodes.len() {
        let Op::Lstm(op) = &m.graph.nodes[l].op else {
            continue;
        };
        let mut op = op.clone();
        let h0_at = 3 + op.has_bias as usize;
        let c0_at = h0_at + op.has_h0 as usize;
        let inputs = &m.graph.nodes[l].inputs;
        // c0 first, so h0's index stays valid.
        let c0 = op.has_c0 && zeros(m, inputs[c0_at]);
        let h0 = op.has_h0 && zeros(m, inputs[h0_at]);
        if !c0 && !h0 {
            continue;
        }
        let node = &mut m.graph.nodes[l];
        if c0 {
            node.inputs.remove(c0_at);
            op.has_c0 = false;
        }
        if h0 {
            node.inputs.remove(h0_at);
            op.has_h0 = false;
        }
        node.op = Op::Lstm(op);
        return Ok(true);
    }
    Ok(false)
}

//! Weight-only int8 rules: LSTM/GRU whose W and R, and Gather whose table, are DequantizeLinear
//! of symmetric i8 constants (zero point 0, per tensor or per output row) read the i8 constants
//! directly (`QLstm`, `QGru`, `QGather`), so the file stores bytes and the kernels run int8
//! products. They run before `fold_constant_dequantize`, which would fold the weights to f32.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{QGather, QGru, QLstm};
use edgefuse_runtime::ir::{Op, TensorId};
use edgefuse_runtime::DType;

use super::qdq::dq_of;
use super::query::producers;
use crate::Module;

/// The i8 constant behind `t` and one scale per row of its `rows`, when `t` is a symmetric
/// DequantizeLinear per tensor or along `axis` (whose length, times the dims before it, is
/// `rows`).
fn i8_rows(
    m: &Module,
    prod: &[Option<usize>],
    t: TensorId,
    axis: usize,
) -> Option<(TensorId, Vec<f32>)> {
    let dq = dq_of(m, prod, t)?;
    let shape = &m.graph.tensors[dq.q].shape;
    if dq.dtype != DType::I8
        || !m.is_const(dq.q)
        || dq.zero_point.iter().any(|&z| z != 0)
        || axis + 1 != shape.len() - 1
    {
        return None;
    }
    let (outer, along) = (shape[..axis].iter().product::<usize>(), shape[axis]);
    let scale = match (dq.scale.len(), dq.axis) {
        (1, _) => vec![dq.scale[0]; outer * along],
        (n, Some(a)) if a == axis && n == along => dq.scale.repeat(outer),
        _ => return None,
    };
    Some((dq.q, scale))
}

/// `LSTM/GRU(x, DQ(W), DQ(R), ..)` with symmetric i8 W and R → `QLstm` / `QGru`.
pub fn fold_dq_into_qlstm(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        if !matches!(node.op, Op::Lstm(_) | Op::Gru(_)) {
            continue;
        }
        let Some((w, w_scale)) = i8_rows(m, &prod, node.inputs[1], 1) else {
            continue;
        };
        let Some((r, r_scale)) = i8_rows(m, &prod, node.inputs[2], 1) else {
            continue;
        };
        let op = match &node.op {
            Op::Lstm(l) => Op::QLstm(QLstm {
                lstm: l.clone(),
                w_scale,
                r_scale,
            }),
            Op::Gru(g) => Op::QGru(QGru {
                gru: g.clone(),
                w_scale,
                r_scale,
            }),
            _ => unreachable!("matched above"),
        };
        let node = &mut m.graph.nodes[k];
        node.op = op;
        node.inputs[1] = w;
        node.inputs[2] = r;
        return Ok(true);
    }
    Ok(false)
}

/// `Gather(DQ(table), indices)` along axis 0 with a symmetric i8 table → `QGather`.
pub fn fold_dq_into_qgather(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        let Op::Gather(g) = &node.op else { continue };
        if g.axis != 0 || m.graph.tensors[node.inputs[0]].shape.len() != 2 {
            continue;
        }
        let Some((table, scale)) = i8_rows(m, &prod, node.inputs[0], 0) else {
            continue;
        };
        let node = &mut m.graph.nodes[k];
        node.op = Op::QGather(QGather { scale });
        node.inputs[0] = table;
        return Ok(true);
    }
    Ok(false)
}

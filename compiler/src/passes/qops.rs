//! Int8 compute rules: DequantizeLinear inputs → Conv / Gemm / MatMul / Add / pooling
//! (→ QuantizeLinear) become one int8 op (`QConv`, `QGemm`, `QAdd`, `QPool`) reading the
//! quantized tensors. With a QuantizeLinear as the only reader the op writes the quantized
//! tensor itself; otherwise it writes f32.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{
    Conv, Gemm, GlobalPool, Pool, QAdd, QConv, QGemm, QOut, QPool, QScale,
};
use edgefuse_runtime::ir::{Op, TensorId};
use edgefuse_runtime::{DType, Tensor};

use super::pad::{add_pads, zero_spatial_pad};
use super::qdq::{dq_of, sole_q_reader, Dq};
use super::query::{producers, use_counts};
use crate::Module;

fn q8(d: DType) -> bool {
    matches!(d, DType::U8 | DType::I8)
}

/// An activation input: DequantizeLinear of a computed u8/i8 tensor, per tensor.
fn activation(m: &Module, prod: &[Option<usize>], t: TensorId) -> Option<(TensorId, QScale)> {
    let dq = dq_of(m, prod, t)?;
    let qs = dq.per_tensor()?;
    (q8(dq.dtype) && !m.is_const(dq.q)).then_some((dq.q, qs))
}

/// A weight input: DequantizeLinear of a u8/i8 constant, per tensor or along `axis`.
fn weight(m: &Module, prod: &[Option<usize>], t: TensorId, axis: usize) -> Option<Dq> {
    let dq = dq_of(m, prod, t)?;
    let ok = q8(dq.dtype) && m.is_const(dq.q) && (dq.scale.len() == 1 || dq.axis == Some(axis));
    ok.then_some(dq)
}

/// A bias: an f32 constant, or DequantizeLinear of a constant (i32 as exporters write it).
fn bias(m: &Module, prod: &[Option<usize>], t: TensorId) -> Option<Vec<f32>> {
    if m.is_const(t) {
        return m.consts[t].as_ref()?.to_f32_vec().ok();
    }
    let dq = dq_of(m, prod, t)?;
    let node = &m.graph.nodes[dq.node];
    let vals: Vec<&Tensor> = node
        .inputs
        .iter()
        .map(|&i| m.consts[i].as_ref())
        .collect::<Option<_>>()?;
    crate::onnx::eval(&node.op, &vals)
        .ok()?
        .remove(0)
        .to_f32_vec()
        .ok()
}

/// The output: quantized through the sole QuantizeLinear reader (returned, to be removed) when
/// `quantizable`, else f32.
fn output(m: &Module, uses: &[usize], t: TensorId, quantizable: bool) -> (QOut, Option<usize>) {
    match sole_q_reader(m, uses, t) {
        Some((k, out)) if quantizable && !m.graph.outputs.contains(&t) => (out, Some(k)),
        _ => (
            QOut {
                dtype: DType::F32,
                q: None,
            },
            None,
        ),
    }
}

/// Replaces node `k` by `op` reading `inputs`; with `q_node`, it takes over that
/// QuantizeLinear's output and the QuantizeLinear goes.
fn replace(m: &mut Module, k: usize, op: Op, inputs: Vec<TensorId>, q_node: Option<usize>) {
    let node = &mut m.graph.nodes[k];
    node.op = op;
    node.inputs = inputs;
    if let Some(qk) = q_node {
        let outs = m.graph.nodes[qk].outputs.clone();
        m.graph.nodes[k].outputs = outs;
        m.graph.nodes.remove(qk);
    }
}

fn quantizable_act(act: Option<edgefuse_runtime::ir::ops::UnaryOp>) -> bool {
    use edgefuse_runtime::ir::ops::UnaryOp;
    matches!(act, None | Some(UnaryOp::Relu) | Some(UnaryOp::Clip { .. }))
}

/// `Conv(DQ(x), DQ(w) [, bias]) [→ Q]` → `QConv`.
pub fn fold_qdq_into_qconv(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    let uses = use_counts(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        let Op::Conv(conv) = &node.op else { continue };
        if conv.residual {
            continue;
        }
        let Some((xq, xs)) = activation(m, &prod, node.inputs[0]) else {
            continue;
        };
        let Some(w) = weight(m, &prod, node.inputs[1], 0) else {
            continue;
        };
        let b = match node.inputs.get(2) {
            Some(&t) => match bias(m, &prod, t) {
                Some(b) => Some(b),
                None => continue,
            },
            None => None,
        };
        let (out, q_node) = output(m, &uses, node.outputs[0], quantizable_act(conv.act));
        let name = m.graph.tensors[node.outputs[0]].name.clone();
        let conv: Conv = conv.clone();
        let mut inputs = vec![xq, w.q];
        if let Some(b) = b {
            let n = b.len();
            inputs.push(m.add_const(format!("{name}.qbias"), Tensor::from_vec(&[n], b)?));
        }
        let op = Op::QConv(QConv {
            conv,
            x: xs,
            w_scale: w.scale,
            w_zero_point: w.zero_point,
            out,
        });
        replace(m, k, op, inputs, q_node);
        return Ok(true);
    }
    Ok(false)
}

/// `Gemm(DQ(x), DQ(w) [, c])` (no `trans_a`, constant 1-D or scalar c) or `MatMul(DQ(x),
/// DQ(w))` with 2-D weights `[.. → Q]` → `QGemm` with weights stored `[N, K]`.
pub fn fold_qdq_into_qgemm(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    let uses = use_counts(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        let (alpha, beta, trans_b, act) = match &node.op {
            Op::Gemm(Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
                act,
            }) => (*alpha, *beta, *trans_b, *act),
            Op::MatMul(_) if node.inputs.len() == 2 => (1.0, 0.0, false, None),
            _ => continue,
        };
        if !(alpha.is_finite() && alpha > 0.0) {
            continue;
        }
        let Some((xq, xs)) = activation(m, &prod, node.inputs[0]) else {
            continue;
        };
        let wshape = m.graph.tensors[node.inputs[1]].shape.clone();
        if wshape.len() != 2 {
            continue;
        }
        let n_axis = if trans_b { 0 } else { 1 };
        let Some(w) = weight(m, &prod, node.inputs[1], n_axis) else {
            continue;
        };
        let (kk, n) = if trans_b {
            (wshape[1], wshape[0])
        } else {
            (wshape[0], wshape[1])
        };
        let b = match node.inputs.get(2) {
            Some(&t) => match bias(m, &prod, t) {
                Some(b) if b.len() == n => Some(b.iter().map(|v| v * beta).collect::<Vec<f32>>()),
                Some(b) if b.len() == 1 => Some(vec![b[0] * beta; n]),
                _ => continue,
            },
            None => None,
        };
        let (out, q_node) = output(m, &uses, node.outputs[0], quantizable_act(act));
        let name = m.graph.tensors[node.outputs[0]].name.clone();
        // Weights as [N, K] in their own type.
        let wt = m.consts[w.q].as_ref().unwrap();
        let bytes = wt.bytes();
        let packed: Vec<u8> = (0..n * kk)
            .map(|i| {
                let (r, c) = (i / kk, i % kk);
                if trans_b {
                    bytes[r * kk + c]
                } else {
                    bytes[c * n + r]
                }
            })
            .collect();
        let wt = Tensor::from_bytes(w.dtype, &[n, kk], &packed)?;
        let mut inputs = vec![xq, m.add_const(format!("{name}.qweight"), wt)];
        if let Some(b) = &b {
            inputs.push(m.add_const(format!("{name}.qbias"), Tensor::from_vec(&[n], b.clone())?));
        }
        let op = Op::QGemm(QGemm {
            x: xs,
            w_scale: w.scale.iter().map(|s| s * alpha).collect(),
            w_zero_point: w.zero_point,
            has_bias: b.is_some(),
            act,
            out,
        });
        replace(m, k, op, inputs, q_node);
        return Ok(true);
    }
    Ok(false)
}

/// `Add(DQ(a), DQ(b))` of one shape `[→ Q]` → `QAdd`.
pub fn fold_qdq_into_qadd(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    let uses = use_counts(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        if !matches!(&node.op, Op::Binary(b) if b.op == edgefuse_runtime::ir::ops::BinaryOp::Add) {
            continue;
        }
        let Some((aq, as_)) = activation(m, &prod, node.inputs[0]) else {
            continue;
        };
        let Some((bq, bs)) = activation(m, &prod, node.inputs[1]) else {
            continue;
        };
        if m.graph.tensors[aq].shape != m.graph.tensors[bq].shape {
            continue;
        }
        let (out, q_node) = output(m, &uses, node.outputs[0], true);
        let op = Op::QAdd(QAdd {
            a: as_,
            b: bs,
            act: None,
            out,
        });
        replace(m, k, op, vec![aq, bq], q_node);
        return Ok(true);
    }
    Ok(false)
}

/// `Pool / GlobalPool(DQ(x)) → Q` to the same type → `QPool` (2-D or 1-D windows).
pub fn fold_qdq_into_qpool(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    let uses = use_counts(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let node = &m.graph.nodes[k];
        let Some((xq, xs)) = activation(m, &prod, node.inputs[0]) else {
            continue;
        };
        let shape = &m.graph.tensors[xq].shape;
        if !(3..=4).contains(&shape.len()) {
            continue;
        }
        let pool = match &node.op {
            Op::Pool(p) => p.clone(),
            Op::GlobalPool(GlobalPool { kind }) => {
                let s = shape.len() - 2;
                Pool {
                    kind: *kind,
                    kernel: shape[2..].to_vec(),
                    strides: vec![1; s],
                    pads: vec![0; 2 * s],
                    dilations: vec![1; s],
                    ceil_mode: false,
                    count_include_pad: false,
                }
            }
            _ => continue,
        };
        let (out, q_node) = output(m, &uses, node.outputs[0], true);
        let (Some(q_node), Some(oq)) = (q_node, out.q) else {
            continue;
        };
        if out.dtype != m.graph.tensors[xq].dtype {
            continue;
        }
        let op = Op::QPool(QPool {
            pool,
            x: xs,
            out: oq,
        });
        replace(m, k, op, vec![xq], Some(q_node));
        return Ok(true);
    }
    Ok(false)
}

/// `QConv(Q(Pad(DQ(q), 0)))` with one set of per-tensor parameters throughout and zero padding
/// of the spatial axes only → `QConv(q)` with the pads added: the padded positions hold
/// `Q(0) = zero point`, which is exactly what the QConv pads with.
pub fn fold_pad_into_qconv(m: &mut Module) -> Result<bool> {
    let prod = producers(&m.graph);
    for k in 0..m.graph.nodes.len() {
        let Op::QConv(c) = &m.graph.nodes[k].op else {
            continue;
        };
        let t = m.graph.nodes[k].inputs[0];
        let Some(qk) = prod[t] else { continue };
        let qnode = &m.graph.nodes[qk];
        let Op::QuantizeLinear(_) = qnode.op else {
            continue;
        };
        let Some((_, Some(qs))) = sole_q_params(m, qk) else {
            continue;
        };
        let Some(pk) = prod[qnode.inputs[0]] else {
            continue;
        };
        let Some(p) = zero_spatial_pad(&m.graph.nodes[pk].op) else {
            continue;
        };
        let Some((q0, xs)) = activation(m, &prod, m.graph.nodes[pk].inputs[0]) else {
            continue;
        };
        if xs != c.x || qs != c.x || m.graph.tensors[q0].dtype != m.graph.tensors[t].dtype {
            continue;
        }
        let p = p.clone();
        let node = &mut m.graph.nodes[k];
        let Op::QConv(c) = &mut node.op else {
            unreachable!("matched above")
        };
        if !add_pads(&mut c.conv, &p) {
            continue;
        }
        node.inputs[0] = q0;
        return Ok(true);
    }
    Ok(false)
}

/// A QuantizeLinear node's output type and per-tensor parameters.
fn sole_q_params(m: &Module, k: usize) -> Option<(DType, Option<QScale>)> {
    let node = &m.graph.nodes[k];
    let Op::QuantizeLinear(q) = &node.op else {
        return None;
    };
    let s = m.consts[*node.inputs.get(1)?].as_ref()?.to_f32_vec().ok()?;
    let z = match node.inputs.get(2) {
        Some(&z) => m.consts[z].as_ref()?.to_i64_vec().ok()?,
        None => vec![0],
    };
    (s.len() == 1 && z.len() == 1).then_some((
        q.to,
        Some(QScale {
            scale: s[0],
            zero_point: z[0] as i32,
        }),
    ))
}

//! Inference BatchNormalization folded into the preceding Conv's weights and bias.

use anyhow::Result;
use edgefuse_runtime::ir::Op;
use edgefuse_runtime::Tensor;

use super::query::{absorb, find_pair};
use crate::Module;

/// Conv (constant weights, no epilogue) → BatchNormalization (constant parameters):
/// `W'[m] = W[m]·s[m]`, `B'[m] = (B[m] − mean[m])·s[m] + beta[m]`, `s = gamma / sqrt(var + eps)`.
pub fn fold_batchnorm_into_conv(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let consts_ok = |ids: &[usize]| ids.iter().all(|&i| m.is_const(i));
    let pair = find_pair(
        g,
        |a| {
            matches!(&g.nodes[a].op, Op::Conv(c) if c.act.is_none())
                && consts_ok(&g.nodes[a].inputs[1..])
        },
        |b| matches!(g.nodes[b].op, Op::BatchNorm(_)) && consts_ok(&g.nodes[b].inputs[1..]),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let Op::BatchNorm(bn) = &m.graph.nodes[b].op else {
        unreachable!()
    };
    let eps = bn.epsilon;
    let p: Vec<Vec<f32>> = m.graph.nodes[b].inputs[1..]
        .iter()
        .map(|&i| m.consts[i].as_ref().unwrap().to_f32_vec())
        .collect::<Result<_, _>>()?;
    let (gamma, beta, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
    let conv_inputs = m.graph.nodes[a].inputs.clone();
    let w = m.consts[conv_inputs[1]].as_ref().unwrap();
    let (shape, wv) = (w.shape.clone(), w.to_f32_vec()?);
    let mch = shape[0];
    let per = wv.len() / mch.max(1);
    let s: Vec<f32> = (0..mch).map(|k| gamma[k] / (var[k] + eps).sqrt()).collect();
    let new_w: Vec<f32> = wv
        .iter()
        .enumerate()
        .map(|(i, &v)| v * s[i / per])
        .collect();
    let old_b = match conv_inputs.get(2) {
        Some(&bid) => m.consts[bid].as_ref().unwrap().to_f32_vec()?,
        None => vec![0.0; mch],
    };
    let new_b: Vec<f32> = (0..mch)
        .map(|k| (old_b[k] - mean[k]) * s[k] + beta[k])
        .collect();
    let name = m.graph.tensors[conv_inputs[1]].name.clone();
    let wid = m.add_const(
        format!("{name}.bn_folded"),
        Tensor::from_vec(&shape, new_w)?,
    );
    let bid = m.add_const(format!("{name}.bn_bias"), Tensor::from_vec(&[mch], new_b)?);
    let node = &mut m.graph.nodes[a];
    node.inputs = vec![conv_inputs[0], wid, bid];
    if let Op::Conv(c) = &mut node.op {
        c.has_bias = true;
    }
    absorb(&mut m.graph, a, b);
    Ok(true)
}

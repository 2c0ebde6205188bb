//! Biases carried forward, a load-time rewrite of the device graph beside the fusions of
//! [`super::fuse`]: a convolution with a bias and no activation leaves its bias out, and the
//! readers of its output add what it left out to their own biases, where it costs nothing.
//!
//! cuDNN runs bias + ReLU fused into its convolution, but a bias alone (or a bias and a
//! residual) only through its implicit precomputed GEMM algorithm, which made EfficientNet's
//! f16 1×1 projections 1.4–2× slower on an H200; so each such convolution was followed by its
//! own bias (+ residual) kernel: sixteen launches in EfficientNet-Lite0.
//!
//! A tensor whose bias was carried holds `raw = true − offset[channel]`. Every reader must be
//! able to take the offset back at no cost, else the writer keeps its bias:
//! - a convolution reading it as its data input with no padding (each window lies inside the
//!   input, so each output sees the whole offset): `W·(raw + o) + b = W·raw + (b + W ⊛ o)`, where
//!   `(W ⊛ o)[k]` sums `W[k, c, window] · o[group's channel c]`;
//! - a convolution reading it as its residual: `… + (raw + o) + b = … + raw + (b + o)`.
//!
//! A reader that itself carries its bias passes the sum on (its output's offset is
//! `b + W ⊛ o + o_residual`). The new biases are device constants computed at upload from the
//! values the device holds ([`Derived`], [`super::precision::Lowered::constants`]); the values
//! the graph computes are those of the model, up to the order of the bias additions.
//!
//! A writer through cuDNN with a residual and no bias then runs as `y = conv(x) + y` with y's
//! memory the residual's (cuDNN's `beta = 1`), when the residual has no later reader: listed in
//! `Lowered::in_place` for the memory plan; its convolution kernel copies the residual into y
//! first where the plan could not share them. So EfficientNet's projections run as cuDNN's call
//! alone.

use std::collections::BTreeMap;

use super::fuse::on_gpu;
use super::ops::nn;
use super::precision::Lowered;
use crate::ir::ops::Conv;
use crate::ir::{Op, TensorId, TensorInfo, WeightRef};
use crate::Result;

/// A bias computed at upload: `base + add + W ⊛ through`, each a vector over the output
/// channels but `through`, which runs over W's input channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The node's own bias (a device constant), if it had one.
    pub base: Option<TensorId>,
    /// The offset arriving through a residual input.
    pub add: Option<TensorId>,
    /// The node's weight and group count, and the offset arriving through the data input.
    pub through: Option<(TensorId, usize, TensorId)>,
}

impl Derived {
    /// The bias for `channels` outputs, given earlier device constants as f32.
    pub fn eval(
        &self,
        channels: usize,
        value: impl Fn(TensorId) -> Result<(Vec<f32>, Vec<usize>)>,
    ) -> Result<Vec<f32>> {
        let bad = |what: &str| crate::Error::invalid(format!("carried bias: {what}"));
        let mut out = match self.base {
            Some(b) => value(b)?.0,
            None => vec![0.0; channels],
        };
        if out.len() != channels {
            return Err(bad("bias length"));
        }
        if let Some(a) = self.add {
            let v = value(a)?.0;
            if v.len() != channels {
                return Err(bad("residual offset length"));
            }
            out.iter_mut().zip(&v).for_each(|(o, x)| *o += x);
        }
        if let Some((w, group, offset)) = self.through {
            let (w, shape) = value(w)?;
            let cin_g = *shape.get(1).ok_or_else(|| bad("weight rank"))?;
            let window: usize = shape[2..].iter().product();
            let per_group = channels / group.max(1);
            let o = value(offset)?.0;
            if o.len() != cin_g * group {
                return Err(bad("offset length"));
            }
            if shape[0] != channels || w.len() != channels * cin_g * window || per_group == 0 {
                return Err(bad("weight shape"));
            }
            for (k, b) in out.iter_mut().enumerate() {
                let g = k / per_group;
                let row = &w[k * cin_g * window..(k + 1) * cin_g * window];
                // Summed in f64: the offset enters once, however many taps.
                let s: f64 = row
                    .chunks_exact(window)
                    .zip(&o[g * cin_g..(g + 1) * cin_g])
                    .map(|(taps, &oc)| taps.iter().map(|&t| t as f64).sum::<f64>() * oc as f64)
                    .sum();
                *b += s as f32;
            }
        }
        Ok(out)
    }
}

/// Whether reader `conv` (its inputs `inputs`, `consts` marking constants) can take an offset
/// on its input `at` into its bias.
fn takes_offset(conv: &Conv, at: usize, consts: &[bool]) -> bool {
    let bias_ok = !conv.has_bias || consts.get(2) == Some(&true);
    let data = at == 0 && conv.pads.iter().all(|&p| p == 0) && consts.get(1) == Some(&true);
    bias_ok && (data || Some(at) == conv.residual_index())
}

/// Carries biases forward in `l`'s device graph (see the module documentation), leaving out
/// the model nodes flagged in `unfused`. Only biases that would cost a launch of their own
/// move: those of convolutions through cuDNN (our kernels add a bias in their epilogue).
pub fn carry_biases(l: &mut Lowered, unfused: &[bool]) {
    carry_biases_where(l, unfused, nn::conv::runs_on_cudnn);
}

/// [`carry_biases`] for the convolutions `moves(conv, x, y)` picks. Records the new biases in
/// `l.derived`, the in-place pairs in `l.in_place`, each node it changed in `l.carried` and
/// each model node whose bias was carried in `l.bias_carried`.
pub fn carry_biases_where(
    l: &mut Lowered,
    unfused: &[bool],
    moves: impl Fn(&Conv, &crate::ir::Fact, &crate::ir::Fact) -> bool,
) {
    let nodes = l.graph.nodes.len();
    let gpu: Vec<bool> = (0..nodes).map(|k| on_gpu(l, k, unfused)).collect();
    let is_const = |l: &Lowered, t: TensorId| l.graph.tensors[t].weight.is_some();
    // Every (reader, input position) of each tensor; graph outputs count as a reader that
    // cannot take an offset.
    let mut uses: Vec<Vec<(usize, usize)>> = vec![Vec::new(); l.graph.tensors.len()];
    for (k, n) in l.graph.nodes.iter().enumerate() {
        for (p, &t) in n.inputs.iter().enumerate() {
            uses[t].push((k, p));
        }
    }
    for &t in &l.graph.outputs {
        uses[t].push((usize::MAX, 0));
    }
    let takes = |l: &Lowered, (r, p): (usize, usize)| -> bool {
        if r == usize::MAX || !gpu[r] {
            return false;
        }
        let n = &l.graph.nodes[r];
        let consts: Vec<bool> = n.inputs.iter().map(|&t| is_const(l, t)).collect();
        matches!(&n.op, Op::Conv(c) if takes_offset(c, p, &consts))
    };
    // Per tensor: the offset it carries (a device constant over its channels).
    let mut offset: Vec<Option<TensorId>> = vec![None; l.graph.tensors.len()];
    for (k, &here) in gpu.iter().enumerate() {
        let node = &l.graph.nodes[k];
        let Op::Conv(c) = &node.op else { continue };
        let c = c.clone();
        let (x, w) = (node.inputs[0], node.inputs.get(1).copied());
        let res = c.residual_index().map(|i| node.inputs[i]);
        let y = node.outputs[0];
        let x_off = offset[x];
        let r_off = res.and_then(|r| offset[r]);
        let (xf, yf) = (l.graph.tensors[x].fact(), l.graph.tensors[y].fact());
        let carries = here
            && moves(&c, &xf, &yf)
            && c.has_bias
            && c.act.is_none()
            && node.outputs.len() == 1
            && is_const(l, node.inputs[2])
            && !uses[y].is_empty()
            && uses[y].iter().all(|&u| takes(l, u));
        if !carries && x_off.is_none() && r_off.is_none() {
            continue;
        }
        let base = c.has_bias.then(|| node.inputs[2]);
        // The bias this node would add: its own plus what arrives.
        let e = match (x_off, r_off) {
            (None, None) => base.expect("a carrying node has a bias"),
            _ => {
                let dtype = l.graph.tensors[x].dtype;
                let k_out = l.graph.tensors[y].shape.get(1).copied().unwrap_or(0);
                let id = l.graph.tensors.len();
                l.graph.tensors.push(TensorInfo {
                    name: format!("{}/carried_bias", node.name),
                    dtype,
                    shape: vec![k_out],
                    weight: Some(WeightRef {
                        offset: 0,
                        len: (k_out * dtype.size()) as u64,
                        stored: None,
                    }),
                    quant: None,
                });
                // Its model tensor: the bias it replaces, or the weight (never read as such:
                // `Lowered::constants` computes it).
                let from = base.or(w).unwrap_or(x);
                l.origin.push(l.origin[from]);
                l.derived.insert(
                    id,
                    Derived {
                        base,
                        add: r_off,
                        through: x_off.map(|o| (w.expect("a Conv has a weight"), c.group, o)),
                    },
                );
                offset.push(None);
                id
            }
        };
        l.carried[k] = true;
        let node = &mut l.graph.nodes[k];
        let Op::Conv(conv) = &mut node.op else {
            unreachable!()
        };
        if carries {
            offset[y] = Some(e);
            node.inputs.remove(2);
            conv.has_bias = false;
            if let Some(j) = l.node_origin[k] {
                l.bias_carried[j] = true;
            }
            if let Some(r) = res {
                if nn::conv::runs_on_cudnn(&c, &xf, &yf) {
                    l.in_place.push((y, r));
                }
            }
        } else if conv.has_bias {
            node.inputs[2] = e;
        } else {
            node.inputs.insert(2, e);
            conv.has_bias = true;
        }
    }
}

/// Model tensors as f32, for [`Derived::eval`].
pub(super) fn widen(data: &[u8], dtype: crate::DType) -> Result<Vec<f32>> {
    let bytes = super::precision::convert(data, dtype, crate::DType::F32)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The derived biases of a lowering, by device tensor.
pub type DerivedMap = BTreeMap<TensorId, Derived>;

#[cfg(test)]
#[path = "carry_tests.rs"]
mod tests;

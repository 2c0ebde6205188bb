//! Zero padding folded into the convolution that reads it.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{Conv, Pad, PadMode};
use edgefuse_runtime::ir::Op;

use super::query::find_pair;
use crate::Module;

/// The Pad `op` is, when a convolution can take it: constant 0, on the spatial axes only.
pub(super) fn zero_spatial_pad(op: &Op) -> Option<&Pad> {
    let Op::Pad(p) = op else { return None };
    let r = p.pads.len() / 2;
    (p.mode == PadMode::Constant
        && p.value == 0.0
        && r >= 3
        && p.pads[..2] == [0, 0]
        && p.pads[r..r + 2] == [0, 0])
    .then_some(p)
}

/// Adds `p`'s spatial pads (a [`zero_spatial_pad`]) to `c`'s. False, changing nothing, when
/// their spatial ranks differ.
pub(super) fn add_pads(c: &mut Conv, p: &Pad) -> bool {
    let r = p.pads.len() / 2;
    let s = r - 2;
    if c.pads.len() != 2 * s {
        return false;
    }
    for i in 0..s {
        c.pads[i] += p.pads[2 + i];
        c.pads[s + i] += p.pads[r + 2 + i];
    }
    true
}

/// The convolution attributes of a Conv or DynamicQuantizeConv.
fn conv_of(op: &mut Op) -> Option<&mut Conv> {
    match op {
        Op::Conv(c) => Some(c),
        Op::DynamicQuantizeConv(d) => Some(&mut d.conv),
        _ => None,
    }
}

/// Pad (constant 0, spatial axes only, single use) → Conv or DynamicQuantizeConv: the pads
/// move into the convolution's `pads`. Covers the TF-style "same" padding that Keras/TF exports
/// compute with an explicit Pad. Exact for DynamicQuantizeConv too: the padded zeros leave
/// DynamicQuantizeLinear's range (which always holds 0) as it is, and quantize to the zero
/// point, which the convolution pads with.
pub fn fold_pad_into_conv(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| zero_spatial_pad(&g.nodes[a].op).is_some(),
        |b| matches!(g.nodes[b].op, Op::Conv(_) | Op::DynamicQuantizeConv(_)),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let Some(p) = zero_spatial_pad(&m.graph.nodes[a].op).cloned() else {
        unreachable!("matched above")
    };
    let src = m.graph.nodes[a].inputs[0];
    let node = &mut m.graph.nodes[b];
    if !conv_of(&mut node.op).is_some_and(|c| add_pads(c, &p)) {
        return Ok(false);
    }
    node.inputs[0] = src;
    // The Pad node is now dead; the driver prunes it.
    Ok(true)
}

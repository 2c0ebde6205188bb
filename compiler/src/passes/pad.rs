//! Zero padding folded into the Conv that reads it.

use anyhow::Result;
use edgefuse_runtime::ir::ops::PadMode;
use edgefuse_runtime::ir::Op;

use super::query::find_pair;
use crate::Module;

/// Pad (constant 0, spatial axes only, single use) → Conv: the pads move into the Conv's `pads`.
/// Covers the TF-style "same" padding that Keras/TF exports compute with an explicit Pad.
pub fn fold_pad_into_conv(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| match &g.nodes[a].op {
            Op::Pad(p) => {
                let r = p.pads.len() / 2;
                p.mode == PadMode::Constant
                    && p.value == 0.0
                    && r >= 3
                    && p.pads[0] == 0
                    && p.pads[1] == 0
                    && p.pads[r] == 0
                    && p.pads[r + 1] == 0
            }
            _ => false,
        },
        |b| matches!(g.nodes[b].op, Op::Conv(_)),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let Op::Pad(p) = m.graph.nodes[a].op.clone() else {
        unreachable!()
    };
    let src = m.graph.nodes[a].inputs[0];
    let node = &mut m.graph.nodes[b];
    if let Op::Conv(c) = &mut node.op {
        let r = p.pads.len() / 2;
        let s = r - 2;
        for i in 0..s {
            c.pads[i] += p.pads[2 + i];
            c.pads[s + i] += p.pads[r + 2 + i];
        }
    }
    node.inputs[0] = src;
    // The Pad node is now dead; the driver prunes it.
    Ok(true)
}

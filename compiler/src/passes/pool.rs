//! A max pool folded into the convolution before it.

use anyhow::Result;
use edgefuse_runtime::ir::ops::{ConvPool, PoolKind};
use edgefuse_runtime::ir::Op;

use super::query::{absorb, find_pair};
use crate::Module;

/// Convolutions up to this many multiply-adds (output elements × channels per group × taps,
/// before the pool) take the pool: the CUDA backend's direct kernel, which computes the pooled
/// output itself, runs layers of this size (`cuda::ops::nn::conv_direct`); larger layers keep
/// the MaxPool as its own node so they stay on cuDNN.
const MAX_MACS: usize = 1 << 22;

/// Conv → MaxPool (no padding, no dilation, rounded down; the Conv's output read by the pool
/// alone) becomes one Conv carrying the pool: `maxpool(act(conv(x) + b))`. On the GPU the two
/// launches of a LeNet-style block become one (the seed CNN has two such blocks); the CPU runs
/// the two kernels one after the other as before.
pub fn fold_maxpool_into_conv(m: &mut Module) -> Result<bool> {
    let g = &m.graph;
    let pair = find_pair(
        g,
        |a| matches!(&g.nodes[a].op, Op::Conv(c) if !c.residual && c.pool.is_none()),
        |b| matches!(&g.nodes[b].op, Op::Pool(p) if p.kind == PoolKind::Max),
    );
    let Some((a, b)) = pair else { return Ok(false) };
    let (Op::Conv(conv), Op::Pool(pool)) = (&g.nodes[a].op, &g.nodes[b].op) else {
        unreachable!()
    };
    let (mid, out) = (
        &g.tensors[g.nodes[a].outputs[0]],
        &g.tensors[g.nodes[b].outputs[0]],
    );
    let s = conv.kernel.len();
    let x = &g.tensors[g.nodes[a].inputs[0]];
    let macs = mid.shape.iter().product::<usize>()
        * (x.shape[1] / conv.group.max(1))
        * conv.kernel.iter().product::<usize>();
    let floor =
        |i: usize| Some(mid.shape[2 + i].checked_sub(pool.kernel[i])? / pool.strides[i].max(1) + 1);
    let fits = mid.dtype == edgefuse_runtime::DType::F32
        && pool.kernel.len() == s
        && pool.pads.iter().all(|&p| p == 0)
        && pool.dilations.iter().all(|&d| d == 1)
        && pool.strides.iter().all(|&st| st >= 1)
        && (0..s).all(|i| Some(out.shape[2 + i]) == floor(i))
        && macs <= MAX_MACS
        && !g.outputs.contains(&g.nodes[a].outputs[0]);
    if !fits {
        return Ok(false);
    }
    let cp = ConvPool {
        kernel: pool.kernel.clone(),
        strides: pool.strides.clone(),
    };
    if let Op::Conv(c) = &mut m.graph.nodes[a].op {
        c.pool = Some(cp);
    }
    absorb(&mut m.graph, a, b);
    Ok(true)
}

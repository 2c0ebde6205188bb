//! Fusions of the device graph, made at load (TensorRT's layer fusion; the model file and the
//! CPU backend are unchanged): a node whose output has exactly one reader, where that reader
//! can run inside the node's kernel, absorbs it. The reader's node leaves the device graph, the
//! node writes the reader's output, and the node's own output never reaches memory. Each saves
//! one launch — on small batch-1 models, what the time is mostly made of (the seed CNN's eight
//! kernels took 3–10 µs each on an H200, launches included).
//!
//! - **Conv → MaxPool**: a convolution on the direct kernel and a max pool whose windows tile
//!   its output (window = stride, no padding, no dilation, a power of two of at most 32
//!   positions, floor rounding): each window position gets its own lanes and the group takes
//!   the maximum after the activation (`conv_direct`). The seed CNN's two pools.
//! - **Gemm → Softmax / LogSoftmax over its rows**: a Gemm on the few-row kernel; its last
//!   block normalises the rows (`small`). A classifier's head.
//! - **Gemm → Gemm (→ Softmax)**: a second few-row product over the first's output, small
//!   enough for one block (M·N·N2 ≤ 2¹⁶), run by the first's last block (its B and C become the
//!   node's last inputs; the first's output goes to scratch), then any Softmax over its rows. The
//!   seed CNN's Dense(64) → Dense(10) → Softmax is one launch.
//! - **QConv → QAdd**: the QConv computes the byte it would store, then the QAdd's arithmetic
//!   with the other operand's byte (`qconv_store`; the same bits as the two kernels). The other
//!   operand becomes the QConv's last input, so it must be written before the QConv runs.
//!   MobileNetV2 int8's ten residual adds.
//!
//! The other way round, a reader can take over a node's epilogue: a convolution through cuDNN
//! runs its bias and any activation but ReLU as a separate kernel (`conv`); when its only
//! reader is a direct convolution or a global pool, that reader applies `act(x + bias)` to each
//! value it loads ([`Prologue`]) and the epilogue's launch goes. EfficientNet-Lite0's fifteen
//! expand layers (ReLU6, read by their depthwise layer) and its head (read by the average
//! pool).
//!
//! And an inserted f32 → f16 cast whose only reader is a convolution through cuDNN with TF
//! "same" padding runs in that convolution's pre-padding kernel, which reads the f32 value and
//! narrows it as it pads ([`Prologue::narrow`]): EfficientNet-Lite0 fp16's input. (Small
//! edge casts run on the host instead, `precision::HOST_CAST_MAX`; biases that would cost a
//! launch are carried to their readers first, `cuda::carry`.)
//!
//! Which nodes fuse is decided from the graph alone (no GPU), so `inspect --backend cuda` shows
//! it; the op files say what their kernels take (`conv_direct::takes_pool`,
//! `gemm::takes_softmax`, `gemm::takes_gemm`, `qconv::takes_qadd`, `conv::separate_epilogue`,
//! `conv_direct::takes_prologue`). The results are those of the separate kernels: bit for bit in
//! f32 and int8 (at the same lanes; `scripts/cuda-emu` checks it), and in f16 a moved epilogue
//! skips one rounding to f16 (the reader uses `act(x + bias)` in f32). A session whose fused
//! kernel fails to build lowers again without that fusion (`lower_fusing`), and
//! `CudaOptions::fuse` (`bench --no-fuse`) turns them all off.

use super::ops::{linalg, nn, quant};
use super::precision::Lowered;
use crate::ir::ops::UnaryOp;
use crate::ir::{Fact, Op};

/// What a device node's kernel runs besides its own op.
#[derive(Debug, Clone)]
pub struct Fused {
    /// The absorbed reader's op; its output is now the node's.
    pub op: Op,
    /// The node's own output, which no longer exists on the device.
    pub mid: Fact,
    /// Where `mid` sat among the reader's inputs (it sits there once: it has one reader).
    pub at: usize,
    /// How many of the reader's other inputs follow the node's own (a QAdd's other operand, a
    /// second Gemm's B and C).
    pub extra: usize,
    /// A reader of the reader's output the kernel runs too (Gemm → Gemm → Softmax).
    pub next: Option<Box<Fused>>,
}

/// An input transform a kernel applies as it loads its data input: `act(x + bias[channel])`,
/// the epilogue of the node that wrote it (whose kernel then leaves it out).
#[derive(Debug, Clone, PartialEq)]
pub struct Prologue {
    pub act: Option<UnaryOp>,
    /// Whether the bias is the node's last input (moved there from the writer's).
    pub bias: bool,
    /// The data input is f32 and the kernel narrows it to its f16 as it loads it (the inserted
    /// cast before it absorbed, [`narrow_into_prepad`]); no act or bias then.
    pub narrow: bool,
}

/// Whether `op` (inputs `inputs`, which of them constant `consts`, output `mid`) can run
/// `reader` (output `out`; `mid` its input `at`, `others` its other inputs, which of them
/// constant `others_const`) inside its kernel.
#[allow(clippy::too_many_arguments)]
pub fn absorbs(
    op: &Op,
    inputs: &[Fact],
    consts: &[bool],
    mid: &Fact,
    reader: &Op,
    at: usize,
    (others, others_const): (&[Fact], &[bool]),
    out: &Fact,
) -> bool {
    if !others.is_empty() {
        return match (op, reader, others) {
            (Op::QConv(c), Op::QAdd(a), [other]) => {
                quant::qconv::takes_qadd(c, mid, a, at, other, out)
            }
            (Op::Gemm(g), Op::Gemm(g2), _) => {
                let mut in2 = vec![mid.clone()];
                in2.extend_from_slice(others);
                let b_const = consts.get(1) == Some(&true);
                let b2_const = others_const.first() == Some(&true);
                mid.dtype == out.dtype
                    && linalg::gemm::takes_gemm(g, inputs, b_const, g2, at, &in2, b2_const)
            }
            _ => false,
        };
    }
    match (op, reader) {
        (Op::Conv(c), Op::Pool(p)) => nn::conv_direct::takes_pool(c, &inputs[0], mid, p, out),
        (Op::Gemm(g), Op::Softmax(s)) => {
            linalg::gemm::takes_softmax(g, inputs, consts.get(1) == Some(&true), s, mid)
        }
        _ => false,
    }
}

/// Fuses `l`'s device graph in place (see the module documentation), leaving out the model
/// nodes flagged in `unfused`; records each fusion in `l.fused` and `l.prologue` (per device
/// node), `l.absorbed` and `l.epilogue_in` (per model node).
pub fn fuse(l: &mut Lowered, unfused: &[bool]) {
    if !skipped("carry") {
        super::carry::carry_biases(l, unfused);
    }
    if !skipped("absorb") {
        absorb_readers(l, unfused);
    }
    if !skipped("epilogues") {
        move_epilogues(l, unfused);
    }
    if !skipped("narrow") {
        narrow_into_prepad(l, unfused);
    }
}

/// The device-graph rewrites a diagnostic run leaves out: `EDGEFUSE_CUDA_SKIP`, a comma-separated
/// list of `carry`, `absorb`, `epilogues`, `narrow` and `host-casts`, so one GPU run can measure
/// each one's share (`scripts/gpu-check.sh`); `bench --no-fuse` leaves them all out.
pub fn skipped(rewrite: &str) -> bool {
    std::env::var("EDGEFUSE_CUDA_SKIP").is_ok_and(|list| names(&list, rewrite))
}

/// Whether comma-separated `list` names `rewrite`.
fn names(list: &str, rewrite: &str) -> bool {
    list.split(',').any(|s| s.trim() == rewrite)
}

/// An inserted f32 → f16 cast whose only reader is a convolution through cuDNN that pads its
/// input first (TF "same" padding, which cuDNN does not take): the convolution's pre-padding
/// kernel reads the f32 value and narrows it as it pads (`shape_pad_zero_narrow`), and the
/// cast's launch goes. EfficientNet-Lite0 fp16's stem (the 150 528 values of its input).
fn narrow_into_prepad(l: &mut Lowered, unfused: &[bool]) {
    let readers = readers(l);
    let mut gone = vec![false; l.graph.nodes.len()];
    for (k, flag) in gone.iter_mut().enumerate() {
        let g = &l.graph;
        let cast = &g.nodes[k];
        let (Op::Cast(c), &[x], &[mid]) = (&cast.op, &cast.inputs[..], &cast.outputs[..]) else {
            continue;
        };
        let narrowing = g.tensors[x].dtype == crate::DType::F32 && c.to == crate::DType::F16;
        if l.node_origin[k].is_some() || !narrowing || readers[mid] != 1 {
            continue;
        }
        let Some(r) = reader_after(g, k, mid) else {
            continue;
        };
        let reader = &g.nodes[r];
        let Op::Conv(conv) = &reader.op else { continue };
        let (xf, yf) = (g.tensors[mid].fact(), g.tensors[reader.outputs[0]].fact());
        let s = conv.kernel.len();
        let asymmetric = conv.pads.len() == 2 * s && conv.pads[..s] != conv.pads[s..];
        let free = l.fused[r].is_none() && l.prologue[r].is_none();
        if !asymmetric
            || !free
            || reader.inputs[0] != mid
            || !on_gpu(l, r, unfused)
            || !nn::conv::runs_on_cudnn(conv, &xf, &yf)
        {
            continue;
        }
        l.graph.nodes[r].inputs[0] = x;
        l.prologue[r] = Some(Prologue {
            act: None,
            bias: false,
            narrow: true,
        });
        *flag = true;
    }
    if !gone.iter().any(|&g| g) {
        return;
    }
    drop_flagged(&mut l.graph.nodes, &gone);
    drop_flagged(&mut l.node_origin, &gone);
    drop_flagged(&mut l.fused, &gone);
    drop_flagged(&mut l.prologue, &gone);
    drop_flagged(&mut l.carried, &gone);
}

/// Drops the entries of a per-node vector whose node is flagged in `gone`.
pub(super) fn drop_flagged<T>(v: &mut Vec<T>, gone: &[bool]) {
    let kept = std::mem::take(v).into_iter().zip(gone).filter(|(_, &g)| !g);
    *v = kept.map(|(x, _)| x).collect();
}

/// Readers of each tensor of `l`'s device graph, the caller counting for graph outputs.
fn readers(l: &Lowered) -> Vec<usize> {
    let g = &l.graph;
    let mut readers = vec![0usize; g.tensors.len()];
    for n in &g.nodes {
        for &t in &n.inputs {
            readers[t] += 1;
        }
    }
    for &t in &g.outputs {
        readers[t] += 1;
    }
    readers
}

/// The first node after node `after` that reads tensor `t` (with one reader: the reader).
fn reader_after(g: &crate::ir::Graph, after: usize, t: usize) -> Option<usize> {
    (after + 1..g.nodes.len()).find(|&r| g.nodes[r].inputs.contains(&t))
}

/// Whether device node `k` runs on the GPU and may fuse.
pub(super) fn on_gpu(l: &Lowered, k: usize, unfused: &[bool]) -> bool {
    l.node_origin[k].is_some_and(|j| l.placements[j].is_gpu() && unfused.get(j) != Some(&true))
}

/// A cuDNN convolution's separate epilogue moves into its only reader's loads.
fn move_epilogues(l: &mut Lowered, unfused: &[bool]) {
    let readers = readers(l);
    l.prologue = vec![None; l.graph.nodes.len()];
    for i in 0..l.graph.nodes.len() {
        let g = &l.graph;
        let node = &g.nodes[i];
        let (Op::Conv(c), &[mid]) = (&node.op, &node.outputs[..]) else {
            continue;
        };
        if readers[mid] != 1 || !on_gpu(l, i, unfused) || l.fused[i].is_some() {
            continue;
        }
        let x = g.tensors[node.inputs[0]].fact();
        let mid_f = g.tensors[mid].fact();
        if !nn::conv::separate_epilogue(c, &x, &mid_f) {
            continue;
        }
        let Some(r) = reader_after(g, i, mid) else {
            continue;
        };
        let reader = &g.nodes[r];
        // The reader's own output: the pooled one when it absorbed a pool.
        let out = match &l.fused[r] {
            Some(f) => f.mid.clone(),
            None => g.tensors[reader.outputs[0]].fact(),
        };
        let takes = match &reader.op {
            Op::Conv(rc) => nn::conv_direct::takes_prologue(rc, &mid_f, &out),
            Op::GlobalPool(_) => true,
            _ => false,
        };
        if !takes || reader.inputs[0] != mid || !on_gpu(l, r, unfused) || l.prologue[r].is_some() {
            continue;
        }
        let Op::Conv(c) = &mut l.graph.nodes[i].op else {
            unreachable!()
        };
        let prologue = Prologue {
            act: c.act.take(),
            bias: std::mem::take(&mut c.has_bias),
            narrow: false,
        };
        if prologue.bias {
            let b = l.graph.nodes[i].inputs.remove(2);
            l.graph.nodes[r].inputs.push(b);
        }
        l.prologue[r] = Some(prologue);
        if let (Some(a), Some(b)) = (l.node_origin[i], l.node_origin[r]) {
            l.epilogue_in[a] = Some(b);
        }
    }
}

/// Nodes run their only reader inside their kernel.
fn absorb_readers(l: &mut Lowered, unfused: &[bool]) {
    let readers = readers(l);
    let gpu: Vec<bool> = (0..l.graph.nodes.len())
        .map(|k| on_gpu(l, k, unfused))
        .collect();
    let on_gpu = |k: usize| gpu[k];
    let g = &l.graph;
    let mut gone = vec![false; g.nodes.len()];
    let mut fused: Vec<Option<Fused>> = vec![None; g.nodes.len()];
    let mut outputs: Vec<Option<Vec<usize>>> = vec![None; g.nodes.len()];
    let mut extra_inputs: Vec<Vec<usize>> = vec![Vec::new(); g.nodes.len()];
    // Which node writes each tensor (none: an input or a constant).
    let mut writer = vec![None; g.tensors.len()];
    for (k, n) in g.nodes.iter().enumerate() {
        for &t in &n.outputs {
            writer[t] = Some(k);
        }
    }
    for (i, node) in g.nodes.iter().enumerate() {
        let &[mid] = &node.outputs[..] else { continue };
        if gone[i] || readers[mid] != 1 || !on_gpu(i) {
            continue;
        }
        let Some(r) = reader_after(g, i, mid) else {
            continue;
        };
        let reader = &g.nodes[r];
        if !on_gpu(r) || reader.outputs.len() != 1 || gone[r] || fused[r].is_some() {
            continue;
        }
        // The reader's other inputs become the node's: they must exist when it runs.
        let Some(at) = reader.inputs.iter().position(|&t| t == mid) else {
            continue;
        };
        let others: Vec<usize> = reader
            .inputs
            .iter()
            .copied()
            .filter(|&t| t != mid)
            .collect();
        if others.iter().any(|&t| writer[t].is_some_and(|w| w >= i)) {
            continue;
        }
        let other_facts: Vec<Fact> = others.iter().map(|&t| g.tensors[t].fact()).collect();
        let other_consts: Vec<bool> = others
            .iter()
            .map(|&t| g.tensors[t].weight.is_some())
            .collect();
        let inputs: Vec<Fact> = node.inputs.iter().map(|&t| g.tensors[t].fact()).collect();
        let consts: Vec<bool> = node
            .inputs
            .iter()
            .map(|&t| g.tensors[t].weight.is_some())
            .collect();
        let (mid_f, out) = (g.tensors[mid].fact(), g.tensors[reader.outputs[0]].fact());
        let same_type = mid_f.dtype == out.dtype || !others.is_empty();
        if !same_type
            || !absorbs(
                &node.op,
                &inputs,
                &consts,
                &mid_f,
                &reader.op,
                at,
                (&other_facts, &other_consts),
                &out,
            )
        {
            continue;
        }
        gone[r] = true;
        outputs[i] = Some(reader.outputs.clone());
        let mut f = Fused {
            op: reader.op.clone(),
            mid: mid_f,
            at,
            extra: others.len(),
            next: None,
        };
        extra_inputs[i] = others;
        if let (Some(a), Some(b)) = (l.node_origin[i], l.node_origin[r]) {
            l.absorbed[b] = Some(a);
        }
        // A second Gemm's Softmax, run by the same last block.
        if let Op::Gemm(_) = &reader.op {
            let y2 = reader.outputs[0];
            let next = reader_after(g, r, y2);
            if let Some(s) = next.filter(|&s| readers[y2] == 1 && on_gpu(s)) {
                let sm = &g.nodes[s];
                let y2f = g.tensors[y2].fact();
                if let (Op::Softmax(x), &[o]) = (&sm.op, &sm.outputs[..]) {
                    if x.axis + 1 == y2f.rank() && g.tensors[o].dtype == y2f.dtype {
                        gone[s] = true;
                        outputs[i] = Some(sm.outputs.clone());
                        f.next = Some(Box::new(Fused {
                            op: sm.op.clone(),
                            mid: y2f,
                            at: 0,
                            extra: 0,
                            next: None,
                        }));
                        if let (Some(a), Some(b)) = (l.node_origin[i], l.node_origin[s]) {
                            l.absorbed[b] = Some(a);
                        }
                    }
                }
            }
        }
        fused[i] = Some(f);
    }
    if !gone.iter().any(|&x| x) {
        return;
    }
    let nodes = std::mem::take(&mut l.graph.nodes);
    let origins = std::mem::take(&mut l.node_origin);
    let carried = std::mem::take(&mut l.carried);
    l.fused.clear();
    for (k, ((mut node, origin), f)) in nodes.into_iter().zip(origins).zip(fused).enumerate() {
        if gone[k] {
            continue;
        }
        l.carried.push(carried[k]);
        if let Some(o) = outputs[k].take() {
            node.outputs = o;
        }
        node.inputs.append(&mut extra_inputs[k]);
        l.graph.nodes.push(node);
        l.node_origin.push(origin);
        l.fused.push(f);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cpu::{Session, SessionOptions};
    use crate::cuda::ops::testing::{device, session_matches_cpu};
    use crate::cuda::precision::{lower, Precision};
    use crate::cuda::{CudaOptions, CudaSession};
    use crate::ir::ops::{Conv, Gemm, Pool, PoolKind, Reshape, Softmax, UnaryOp};
    use crate::ir::Graph;
    use crate::testing::{info, node, values};
    use crate::{DType, Model, Tensor};

    fn conv(pads: usize) -> Op {
        Op::Conv(Conv {
            kernel: vec![3, 3],
            strides: vec![1, 1],
            pads: vec![pads; 4],
            dilations: vec![1, 1],
            group: 1,
            has_bias: true,
            act: Some(UnaryOp::Relu),
            residual: false,
        })
    }

    fn max_pool(k: usize, stride: usize) -> Op {
        Op::Pool(Pool {
            kind: PoolKind::Max,
            kernel: vec![k, k],
            strides: vec![stride, stride],
            pads: vec![0; 4],
            dilations: vec![1, 1],
            ceil_mode: false,
            count_include_pad: false,
        })
    }

    /// A small CNN with the seed CNN's pattern, batch 2: Conv → MaxPool (2×2) twice, the
    /// second over an odd extent (5×5 → 2×2), then Reshape → Gemm → LogSoftmax; `pool2` is the
    /// second pool's (kernel, stride), `extra` also makes the first convolution's output a
    /// graph output.
    fn cnn(pool2: (usize, usize), extra: bool) -> (Graph, Vec<Option<Tensor>>) {
        let p2 = (5 - pool2.0) / pool2.1 + 1;
        let mut tensors = vec![
            info("x", &[2, 3, 12, 12]),       // 0
            info("w1", &[8, 3, 3, 3]),        // 1
            info("b1", &[8]),                 // 2
            info("c1", &[2, 8, 12, 12]),      // 3
            info("p1", &[2, 8, 6, 6]),        // 4
            info("w2", &[16, 8, 2, 2]),       // 5
            info("b2", &[16]),                // 6
            info("c2", &[2, 16, 5, 5]),       // 7
            info("p2", &[2, 16, p2, p2]),     // 8
            info("flat", &[2, 16 * p2 * p2]), // 9
            info("W", &[10, 16 * p2 * p2]),   // 10
            info("B", &[10]),                 // 11
            info("g", &[2, 10]),              // 12
            info("y", &[2, 10]),              // 13
        ];
        tensors[5].shape = vec![16, 8, 2, 2];
        let mut conv2 = conv(0);
        if let Op::Conv(c) = &mut conv2 {
            c.kernel = vec![2, 2];
        }
        let graph = Graph {
            tensors,
            nodes: vec![
                node("conv1", conv(1), &[0, 1, 2], &[3]),
                node("pool1", max_pool(2, 2), &[3], &[4]),
                node("conv2", conv2, &[4, 5, 6], &[7]),
                node("pool2", max_pool(pool2.0, pool2.1), &[7], &[8]),
                node(
                    "flat",
                    Op::Reshape(Reshape {
                        shape: vec![2, 16 * p2 * p2],
                    }),
                    &[8],
                    &[9],
                ),
                node(
                    "fc",
                    Op::Gemm(Gemm {
                        alpha: 1.0,
                        beta: 1.0,
                        trans_a: false,
                        trans_b: true,
                        act: None,
                    }),
                    &[9, 10, 11],
                    &[12],
                ),
                node(
                    "logsoftmax",
                    Op::Softmax(Softmax { axis: 1, log: true }),
                    &[12],
                    &[13],
                ),
            ],
            inputs: vec![0],
            outputs: if extra { vec![13, 3] } else { vec![13] },
        };
        let consts = (0..graph.tensors.len())
            .map(|i| {
                [1, 2, 5, 6, 10, 11]
                    .contains(&i)
                    .then(|| values(&graph.tensors[i].shape, 10 + i as u64))
            })
            .collect();
        (graph, consts)
    }

    fn ops(g: &Graph) -> Vec<&'static str> {
        g.nodes.iter().map(|n| n.op.name()).collect()
    }

    #[test]
    fn pools_and_softmax_run_inside_the_kernel_before_them() {
        let (g, _) = cnn((2, 2), false);
        for precision in [Precision::F32, Precision::F16] {
            let l = lower(&g, precision);
            let device: Vec<&str> = ops(&l.graph).into_iter().filter(|&o| o != "Cast").collect();
            assert_eq!(device, ["Conv", "Conv", "Reshape", "Gemm"], "{precision:?}");
            assert_eq!(
                l.absorbed,
                [None, Some(0), None, Some(2), None, None, Some(5)],
                "{precision:?}"
            );
            // The fused nodes write their reader's outputs; the pools' inputs are gone.
            let conv1 = l.graph.nodes.iter().find(|n| n.name == "conv1").unwrap();
            assert_eq!(conv1.outputs, [4]);
            assert!(l.graph.nodes.iter().all(|n| !n.inputs.contains(&3)));
            let k = l.graph.nodes.iter().position(|n| n.name == "fc").unwrap();
            assert!(matches!(
                l.fused[k].as_ref().map(|f| &f.op),
                Some(Op::Softmax(_))
            ));
            assert_eq!(l.fused.len(), l.graph.nodes.len());
            assert_eq!(l.node_origin.len(), l.graph.nodes.len());
        }
    }

    #[test]
    fn nodes_flagged_unfused_keep_their_own_kernels() {
        // A session flags a node whose fused kernel failed to build and lowers again.
        let (g, _) = cnn((2, 2), false);
        let mut unfused = vec![false; g.nodes.len()];
        unfused[3] = true; // pool2, the reader
        unfused[5] = true; // fc, the absorber
        let l = crate::cuda::precision::lower_fusing(&g, Precision::F32, &[], &unfused);
        assert_eq!(
            ops(&l.graph),
            ["Conv", "Conv", "MaxPool", "Reshape", "Gemm", "LogSoftmax"]
        );
        assert_eq!(l.absorbed, [None, Some(0), None, None, None, None, None]);
    }

    #[test]
    fn what_does_not_fuse() {
        // An overlapping pool (3×3, stride 2) stays a node; a graph output stays in memory.
        let (g, _) = cnn((3, 2), true);
        let l = lower(&g, Precision::F32);
        assert_eq!(
            ops(&l.graph),
            ["Conv", "MaxPool", "Conv", "MaxPool", "Reshape", "Gemm"]
        );
        assert_eq!(l.absorbed, [None, None, None, None, None, None, Some(5)]);
        let x = Fact::new(crate::DType::F32, vec![1, 8, 6, 6]);
        let mid = Fact::new(crate::DType::F32, vec![1, 8, 6, 6]);
        let y = Fact::new(crate::DType::F32, vec![1, 8, 3, 3]);
        let Op::Conv(c) = conv(1) else { unreachable!() };
        let Op::Pool(p) = max_pool(2, 2) else {
            unreachable!()
        };
        assert!(nn::conv_direct::takes_pool(&c, &x, &mid, &p, &y));
        // Average pools, padded pools, ceil rounding, a residual: no.
        let avg = Pool {
            kind: PoolKind::Avg,
            ..p.clone()
        };
        let padded = Pool {
            pads: vec![1, 1, 1, 1],
            ..p.clone()
        };
        assert!(!nn::conv_direct::takes_pool(&c, &x, &mid, &avg, &y));
        assert!(!nn::conv_direct::takes_pool(&c, &x, &mid, &padded, &y));
        let ceil = Fact::new(crate::DType::F32, vec![1, 8, 4, 4]);
        let odd = Fact::new(crate::DType::F32, vec![1, 8, 7, 7]);
        assert!(!nn::conv_direct::takes_pool(&c, &x, &odd, &p, &ceil));
        let res = Conv {
            residual: true,
            ..c.clone()
        };
        assert!(!nn::conv_direct::takes_pool(&res, &x, &mid, &p, &y));
        // A Softmax over another axis than the rows: no.
        let Op::Gemm(gm) = &g.nodes[5].op else {
            unreachable!()
        };
        let facts: Vec<Fact> = g.nodes[5]
            .inputs
            .iter()
            .map(|&t| g.tensors[t].fact())
            .collect();
        let cols = Softmax {
            axis: 0,
            log: false,
        };
        let rows = Softmax { axis: 1, ..cols };
        let gy = g.tensors[12].fact();
        assert!(linalg::gemm::takes_softmax(gm, &facts, true, &rows, &gy));
        assert!(!linalg::gemm::takes_softmax(gm, &facts, true, &cols, &gy));
    }

    /// EfficientNet's pattern: a convolution cuDNN runs with a separate ReLU6 epilogue, read
    /// only by a depthwise convolution (direct kernel, TF "same" stride 2); another read only
    /// by a global average pool; then Reshape → Gemm.
    fn mbconv() -> (Graph, Vec<Option<Tensor>>) {
        let relu6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
        let conv = |k: usize, pads: Vec<usize>, stride: usize, group: usize| {
            Op::Conv(Conv {
                kernel: vec![k, k],
                strides: vec![stride, stride],
                pads,
                dilations: vec![1, 1],
                group,
                has_bias: true,
                act: relu6,
                residual: false,
            })
        };
        let graph = Graph {
            tensors: vec![
                info("x", &[1, 16, 32, 32]),  // 0
                info("wa", &[64, 16, 3, 3]),  // 1
                info("ba", &[64]),            // 2
                info("a", &[1, 64, 32, 32]),  // 3
                info("wd", &[64, 1, 3, 3]),   // 4
                info("bd", &[64]),            // 5
                info("d", &[1, 64, 16, 16]),  // 6
                info("wc", &[128, 64, 3, 3]), // 7
                info("bc", &[128]),           // 8
                info("c", &[1, 128, 16, 16]), // 9
                info("p", &[1, 128, 1, 1]),   // 10
                info("flat", &[1, 128]),      // 11
                info("W", &[10, 128]),        // 12
                info("B", &[10]),             // 13
                info("y", &[1, 10]),          // 14
            ],
            nodes: vec![
                node("expand", conv(3, vec![1; 4], 1, 1), &[0, 1, 2], &[3]),
                node("dw", conv(3, vec![0, 0, 1, 1], 2, 64), &[3, 4, 5], &[6]),
                node("head", conv(3, vec![1; 4], 1, 1), &[6, 7, 8], &[9]),
                node(
                    "gap",
                    Op::GlobalPool(crate::ir::ops::GlobalPool {
                        kind: PoolKind::Avg,
                    }),
                    &[9],
                    &[10],
                ),
                node(
                    "flat",
                    Op::Reshape(Reshape {
                        shape: vec![1, 128],
                    }),
                    &[10],
                    &[11],
                ),
                node(
                    "fc",
                    Op::Gemm(Gemm {
                        alpha: 1.0,
                        beta: 1.0,
                        trans_a: false,
                        trans_b: true,
                        act: None,
                    }),
                    &[11, 12, 13],
                    &[14],
                ),
            ],
            inputs: vec![0],
            outputs: vec![14],
        };
        let consts = (0..graph.tensors.len())
            .map(|i| {
                [1, 2, 4, 5, 7, 8, 12, 13]
                    .contains(&i)
                    .then(|| values(&graph.tensors[i].shape, 30 + i as u64))
            })
            .collect();
        (graph, consts)
    }

    /// EfficientNet-Lite0's stem: x [1, 3, 224, 224] → 3×3 stride-2 convolution to 32
    /// channels (10.8 M products: cuDNN) with TF "same" padding (`pads`) → global average pool.
    fn stem(pads: Vec<usize>) -> (Graph, Vec<Option<Tensor>>) {
        let graph = Graph {
            tensors: vec![
                info("x", &[1, 3, 224, 224]),  // 0
                info("w", &[32, 3, 3, 3]),     // 1
                info("b", &[32]),              // 2
                info("s", &[1, 32, 112, 112]), // 3
                info("y", &[1, 32, 1, 1]),     // 4
            ],
            nodes: vec![
                node(
                    "stem",
                    Op::Conv(Conv {
                        kernel: vec![3, 3],
                        strides: vec![2, 2],
                        pads,
                        dilations: vec![1, 1],
                        group: 1,
                        has_bias: true,
                        act: Some(UnaryOp::Relu),
                        residual: false,
                    }),
                    &[0, 1, 2],
                    &[3],
                ),
                node(
                    "gap",
                    Op::GlobalPool(crate::ir::ops::GlobalPool {
                        kind: PoolKind::Avg,
                    }),
                    &[3],
                    &[4],
                ),
            ],
            inputs: vec![0],
            outputs: vec![4],
        };
        let consts = (0..5)
            .map(|i| (i == 1 || i == 2).then(|| values(&graph.tensors[i].shape, 40 + i as u64)))
            .collect();
        (graph, consts)
    }

    #[test]
    fn a_skip_list_names_rewrites_exactly() {
        assert!(names("carry", "carry"));
        assert!(names("absorb, carry", "carry"));
        assert!(!names("carrying,narrow", "carry"));
        assert!(!names("", "carry"));
    }

    #[test]
    fn the_input_cast_runs_in_the_stems_padding() {
        let (g, consts) = stem(vec![0, 0, 1, 1]);
        let m = model(g, &consts);
        let l = lower(m.graph(), Precision::F16);
        // No cast left: the input's narrowed by the stem's pre-padding, the pooled output
        // widened by the host.
        assert!(
            ops(&l.graph).iter().all(|&o| o != "Cast"),
            "{:?}",
            ops(&l.graph)
        );
        assert_eq!(l.graph.nodes[0].inputs[0], 0);
        assert!(l.prologue[0].as_ref().is_some_and(|p| p.narrow));
        assert_eq!(l.host_outputs, [true]);
        assert_eq!(l.fused.len(), l.graph.nodes.len());
        // What the build asks: the f32 input counts as the f16 value it becomes (asked as it
        // is, the Conv has mixed dtypes, and the session would send the stem back to f32).
        let first = &l.graph.nodes[0];
        let facts = |ids: &[usize]| -> Vec<Fact> {
            ids.iter().map(|&t| l.graph.tensors[t].fact()).collect()
        };
        let (ins, outs) = (facts(&first.inputs), facts(&first.outputs));
        assert_eq!(ins[0].dtype, crate::DType::F32);
        assert!(crate::cuda::ops::supports(&first.op, &ins, &outs).is_err());
        crate::cuda::ops::supports_as_built(&first.op, &ins, &outs, l.prologue[0].as_ref())
            .unwrap();
        // Symmetric padding needs no pre-padding: the cast stays; fusion off: too.
        let (g2, _) = stem(vec![1; 4]);
        assert!(ops(&lower(&g2, Precision::F16).graph).contains(&"Cast"));
        let off = crate::cuda::precision::lower_fusing(m.graph(), Precision::F16, &[], &[true; 2]);
        assert_eq!(ops(&off.graph).iter().filter(|&&o| o == "Cast").count(), 2);
        let x = values(&[1, 3, 224, 224], 7);
        let runs = [
            (Precision::F16, true, 2e-2f32),
            (Precision::F16, false, 2e-2),
        ];
        session_matches_cpu(&m, &x, &runs, |s, _, fuse| {
            // Built as lowered: the stem in f16, no cast kernel when fusing.
            assert_eq!(s.node_dtypes()[0], Some(crate::DType::F16));
            let casts = ops(s.device_graph())
                .iter()
                .filter(|&&o| o == "Cast")
                .count();
            assert_eq!(casts, if fuse { 0 } else { 2 }, "fuse {fuse}");
        });
        eprintln!("the stem narrowing its f32 input as it pads matches the CPU");
    }

    #[test]
    fn a_cudnn_epilogue_moves_into_its_readers_loads() {
        let (g, _) = mbconv();
        for precision in [Precision::F32, Precision::F16] {
            let l = lower(&g, precision);
            let find = |name: &str| l.graph.nodes.iter().position(|n| n.name == name).unwrap();
            let relu6 = Prologue {
                act: Some(UnaryOp::Clip { min: 0.0, max: 6.0 }),
                bias: true,
                narrow: false,
            };
            for (writer, reader) in [("expand", "dw"), ("head", "gap")] {
                let (w, r) = (find(writer), find(reader));
                let Op::Conv(c) = &l.graph.nodes[w].op else {
                    unreachable!()
                };
                assert!(!c.has_bias && c.act.is_none(), "{precision:?} {writer}");
                assert_eq!(l.graph.nodes[w].inputs.len(), 2);
                assert_eq!(
                    l.prologue[r].as_ref(),
                    Some(&relu6),
                    "{precision:?} {reader}"
                );
                // The bias moved to the reader's last input.
                let bias = *l.graph.nodes[r].inputs.last().unwrap();
                assert_eq!(l.origin[bias], if writer == "expand" { 2 } else { 8 });
            }
            assert_eq!(
                l.epilogue_in,
                [Some(1), None, Some(3), None, None, None],
                "{precision:?}"
            );
        }
        // A direct or tiled convolution keeps its epilogue (it costs nothing there); so does one
        // whose output has a second reader.
        let (mut g2, _) = mbconv();
        g2.outputs.push(3);
        let l = lower(&g2, Precision::F32);
        assert_eq!(l.epilogue_in, [None, None, Some(3), None, None, None]);
        let x = Fact::new(crate::DType::F32, vec![1, 16, 32, 32]);
        let y = Fact::new(crate::DType::F32, vec![1, 64, 32, 32]);
        let Op::Conv(c) = &g.nodes[0].op else {
            unreachable!()
        };
        assert!(nn::conv::separate_epilogue(c, &x, &y));
        let small = Fact::new(crate::DType::F32, vec![1, 16, 8, 8]);
        let small_y = Fact::new(crate::DType::F32, vec![1, 64, 8, 8]);
        assert!(!nn::conv::separate_epilogue(c, &small, &small_y));
        let relu = Conv {
            act: Some(UnaryOp::Relu),
            ..c.clone()
        };
        assert!(
            !nn::conv::separate_epilogue(&relu, &x, &y),
            "cuDNN runs bias + ReLU"
        );
    }

    #[test]
    fn moved_epilogues_match_the_cpu() {
        let (g, consts) = mbconv();
        let x = values(&[1, 16, 32, 32], 1);
        let runs = [
            (Precision::F32, true, 1e-4f32),
            (Precision::F16, true, 2e-2),
        ];
        session_matches_cpu(&model(g, &consts), &x, &runs, |_, _, _| {});
        eprintln!("cuDNN epilogues applied by the depthwise and pool kernels: fp32 and fp16 match the CPU");
    }

    /// MobileNetV2's residual: `x` (u8) → QConv A (3×3, i8 weights: dp4a) and QConv B (1×1:
    /// the tiled kernel), then `QAdd(A, B)` (i8 out), then `QAdd(x, that)` (u8 out). Only the
    /// later writer of a QAdd's operands can run it, so B takes the first QAdd; the second
    /// stays (its operand's writer was the first QAdd, itself absorbed).
    fn residual() -> (Graph, Vec<Option<Tensor>>) {
        use crate::ir::ops::{QAdd, QConv, QOut, QScale};
        let q = |scale: f32, zero_point: i32| QScale { scale, zero_point };
        let out = |dtype: DType, zp: i32| QOut {
            dtype,
            q: Some(q(0.05, zp)),
        };
        let qconv = |k: usize, pads: usize| {
            Op::QConv(QConv {
                conv: Conv {
                    kernel: vec![k, k],
                    strides: vec![1, 1],
                    pads: vec![pads; 4],
                    dilations: vec![1, 1],
                    group: 1,
                    has_bias: true,
                    act: None,
                    residual: false,
                },
                x: q(0.02, 7),
                w_scale: (0..8).map(|i| 0.01 + i as f32 * 1e-3).collect(),
                w_zero_point: vec![0; 8],
                out: out(DType::U8, 3),
            })
        };
        let tensor = |name: &str, dtype: DType, shape: &[usize]| crate::ir::TensorInfo {
            dtype,
            ..info(name, shape)
        };
        let graph = Graph {
            tensors: vec![
                tensor("x", DType::U8, &[1, 8, 6, 6]),  // 0
                tensor("wa", DType::I8, &[8, 8, 3, 3]), // 1
                tensor("ba", DType::F32, &[8]),         // 2
                tensor("a", DType::U8, &[1, 8, 6, 6]),  // 3
                tensor("wb", DType::I8, &[8, 8, 1, 1]), // 4
                tensor("bb", DType::F32, &[8]),         // 5
                tensor("b", DType::U8, &[1, 8, 6, 6]),  // 6
                tensor("s", DType::I8, &[1, 8, 6, 6]),  // 7
                tensor("y", DType::U8, &[1, 8, 6, 6]),  // 8
            ],
            nodes: vec![
                node("A", qconv(3, 1), &[0, 1, 2], &[3]),
                node("B", qconv(1, 0), &[0, 4, 5], &[6]),
                node(
                    "add1",
                    Op::QAdd(QAdd {
                        a: q(0.05, 3),
                        b: q(0.05, 3),
                        act: None,
                        out: out(DType::I8, -5),
                    }),
                    &[3, 6],
                    &[7],
                ),
                node(
                    "add2",
                    Op::QAdd(QAdd {
                        a: q(0.02, 7),
                        b: q(0.05, -5),
                        act: Some(UnaryOp::Relu),
                        out: out(DType::U8, 4),
                    }),
                    &[0, 7],
                    &[8],
                ),
            ],
            inputs: vec![0],
            outputs: vec![8],
        };
        let bytes = |dtype: DType, shape: &[usize], seed: usize| {
            let mut t = Tensor::zeros(dtype, shape);
            for (i, b) in t.bytes_mut().iter_mut().enumerate() {
                *b = ((i * 131 + seed * 17) % 251) as u8;
            }
            t
        };
        let bias = |seed: u64| values(&[8], seed);
        let consts = (0..graph.tensors.len())
            .map(|i| match i {
                1 => Some(bytes(DType::I8, &[8, 8, 3, 3], 1)),
                2 => Some(bias(2)),
                4 => Some(bytes(DType::I8, &[8, 8, 1, 1], 3)),
                5 => Some(bias(4)),
                _ => None,
            })
            .collect();
        (graph, consts)
    }

    #[test]
    fn a_qadd_runs_in_the_later_qconv_writing_its_operands() {
        let (g, _) = residual();
        let l = lower(&g, Precision::F32);
        assert_eq!(ops(&l.graph), ["QConv", "QConv", "QAdd"]);
        assert_eq!(l.absorbed, [None, None, Some(1), None]);
        // B writes the first QAdd's output, reading A's as its extra last input.
        let b = &l.graph.nodes[1];
        assert_eq!(b.inputs, [0, 4, 5, 3]);
        assert_eq!(b.outputs, [7]);
        let f = l.fused[1].as_ref().unwrap();
        assert_eq!((f.at, f.extra), (1, 1));
    }

    #[test]
    fn qconv_with_a_qadd_equals_the_cpu_exactly() {
        if device().is_none() {
            return;
        }
        let (g, consts) = residual();
        let m = model(g, &consts);
        let mut x = Tensor::zeros(DType::U8, &[1, 8, 6, 6]);
        for (i, b) in x.bytes_mut().iter_mut().enumerate() {
            *b = ((i * 37 + 11) % 256) as u8;
        }
        let want = Session::new(m.clone(), SessionOptions::with_threads(1))
            .unwrap()
            .run_tensors(std::slice::from_ref(&x))
            .unwrap();
        for fuse in [true, false] {
            let opts = CudaOptions {
                fuse,
                ..CudaOptions::default()
            };
            let mut s = CudaSession::new(m.clone(), &opts).unwrap();
            assert_eq!(s.absorbed().iter().flatten().count(), usize::from(fuse));
            for run in 0..2 {
                let got = s.run_tensors(std::slice::from_ref(&x)).unwrap();
                assert_eq!(got[0].bytes(), want[0].bytes(), "fuse {fuse} run {run}");
            }
        }
        eprintln!("QConv + QAdd in one kernel: the CPU's bytes exactly");
    }

    /// A classifier's head: Gemm (ReLU) → Gemm (B stored [K, N]: transposed at build) →
    /// Softmax, batch 2.
    fn head() -> (Graph, Vec<Option<Tensor>>) {
        let gemm = |trans_b: bool, act: Option<UnaryOp>| {
            Op::Gemm(Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b,
                act,
            })
        };
        let graph = Graph {
            tensors: vec![
                info("x", &[2, 20]),   // 0
                info("w1", &[16, 20]), // 1
                info("c1", &[16]),     // 2
                info("h", &[2, 16]),   // 3
                info("w2", &[16, 5]),  // 4
                info("c2", &[5]),      // 5
                info("z", &[2, 5]),    // 6
                info("y", &[2, 5]),    // 7
            ],
            nodes: vec![
                node("fc1", gemm(true, Some(UnaryOp::Relu)), &[0, 1, 2], &[3]),
                node("fc2", gemm(false, None), &[3, 4, 5], &[6]),
                node(
                    "softmax",
                    Op::Softmax(Softmax {
                        axis: 1,
                        log: false,
                    }),
                    &[6],
                    &[7],
                ),
            ],
            inputs: vec![0],
            outputs: vec![7],
        };
        let consts = (0..graph.tensors.len())
            .map(|i| {
                [1, 2, 4, 5]
                    .contains(&i)
                    .then(|| values(&graph.tensors[i].shape, 50 + i as u64))
            })
            .collect();
        (graph, consts)
    }

    #[test]
    fn a_classifier_head_is_one_kernel() {
        // Lowered from the written model: its weights are constants (fc2's B is transposed).
        let (g, consts) = head();
        let m = model(g, &consts);
        for precision in [Precision::F32, Precision::F16] {
            let l = lower(m.graph(), precision);
            let device: Vec<&str> = ops(&l.graph).into_iter().filter(|&o| o != "Cast").collect();
            assert_eq!(device, ["Gemm"], "{precision:?}");
            assert_eq!(l.absorbed, [None, Some(0), Some(0)]);
            let k = l.graph.nodes.iter().position(|n| n.name == "fc1").unwrap();
            let f = l.fused[k].as_ref().unwrap();
            assert!(matches!(f.op, Op::Gemm(_)) && f.extra == 2);
            assert!(matches!(
                f.next.as_deref().map(|n| &n.op),
                Some(Op::Softmax(_))
            ));
            // fc2's B and C follow fc1's own inputs.
            assert_eq!(l.origin[l.graph.nodes[k].inputs[3]], 4);
            assert_eq!(l.origin[l.graph.nodes[k].inputs[4]], 5);
        }
        // A second product too large for one block stays a node (its Softmax then fuses).
        let (mut big, mut consts) = head();
        big.tensors[4].shape = vec![16, 5000];
        big.tensors[5].shape = vec![5000];
        for t in [6, 7] {
            big.tensors[t].shape = vec![2, 5000];
        }
        consts[4] = Some(values(&[16, 5000], 54));
        consts[5] = Some(values(&[5000], 55));
        let big = model(big, &consts);
        let l = lower(big.graph(), Precision::F32);
        assert_eq!(ops(&l.graph), ["Gemm", "Gemm"]);
        assert_eq!(l.absorbed, [None, None, Some(1)]);
    }

    #[test]
    fn a_fused_head_matches_the_cpu() {
        let (g, consts) = head();
        let x = values(&[2, 20], 1);
        // Softmax outputs: the bound is absolute.
        let runs = [
            (Precision::F32, true, 1e-6f32),
            (Precision::F16, true, 1e-2),
        ];
        session_matches_cpu(&model(g, &consts), &x, &runs, |s, _, _| {
            assert_eq!(s.absorbed().iter().flatten().count(), 2);
        });
        eprintln!("Gemm → Gemm → Softmax in one kernel: fp32 and fp16 match the CPU");
    }

    fn max_diff(got: &[f32], want: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len());
        got.iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    }

    fn model(graph: Graph, consts: &[Option<Tensor>]) -> Arc<Model> {
        crate::testing::model(graph, consts)
    }

    #[test]
    fn fused_kernels_match_the_cpu() {
        if device().is_none() {
            return;
        }
        let (g, consts) = cnn((2, 2), false);
        let m = model(g, &consts);
        let x = values(&[2, 3, 12, 12], 1);
        let want = Session::new(m.clone(), SessionOptions::with_threads(1))
            .unwrap()
            .run_tensors(std::slice::from_ref(&x))
            .unwrap()[0]
            .to_f32_vec()
            .unwrap();
        // In f16, relative to the largest output (LogSoftmax values reach -94 here, where one
        // f16 step is 0.0625: the emulated GPU found an absolute 2e-2 too tight for f16's own
        // rounding); in f32, absolute.
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (precision, tol, fuse) in [
            (Precision::F32, 1e-5f32, true),
            (Precision::F16, 1e-3, true),
            (Precision::F32, 1e-5, false),
            (Precision::F16, 1e-3, false),
        ] {
            let opts = CudaOptions {
                precision: Some(precision),
                fuse,
                ..CudaOptions::default()
            };
            let mut s = CudaSession::new(m.clone(), &opts).unwrap();
            let fused = if fuse { 3 } else { 0 };
            assert_eq!(s.absorbed().iter().flatten().count(), fused);
            // Replayed three times: the Softmax's block counter resets itself.
            for run in 0..3 {
                let got = s.run_tensors(std::slice::from_ref(&x)).unwrap()[0]
                    .to_f32_vec()
                    .unwrap();
                let d = max_diff(&got, &want);
                let bound = if precision == Precision::F16 {
                    tol * scale
                } else {
                    tol
                };
                assert!(d <= bound, "{precision:?} run {run}: max |diff| {d}");
            }
        }
        eprintln!("Conv+MaxPool and Gemm+LogSoftmax fused: fp32 and fp16 match the CPU");
    }
}

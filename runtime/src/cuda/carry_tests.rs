use super::*;
use crate::cpu::{Session, SessionOptions};
use crate::cuda::precision::{lower, lower_fusing, Precision};
use crate::ir::ops::{Conv, UnaryOp};
use crate::ir::Graph;
use crate::testing::{info, model, node, values};
use crate::Tensor;

fn conv(k: usize, stride: usize, pad: usize, group: usize, act: Option<UnaryOp>) -> Conv {
    Conv {
        kernel: vec![k, k],
        strides: vec![stride, stride],
        pads: vec![pad; 4],
        dilations: vec![1, 1],
        group,
        has_bias: true,
        act,
        residual: false,
    }
}

/// Two MBConv-like blocks, batch 2: stem → project (bias only) → expand (ReLU6) → depthwise
/// (padded) → project with the first projection as residual (bias only) → a head that reads
/// it through a 2×2 window, stride 2, in two groups. Both projections carry their biases:
/// the expand layer and the head take them, the second projection passes the first's on.
/// `padded_head` pads the head instead, so the second projection must keep its bias (and the
/// first passes its own to the second, which adds it).
fn blocks(padded_head: bool) -> (Graph, Vec<Option<Tensor>>) {
    let clip6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
    let tensors = vec![
        info("x", &[2, 3, 8, 8]),   // 0
        info("ws", &[8, 3, 3, 3]),  // 1
        info("bs", &[8]),           // 2
        info("s", &[2, 8, 8, 8]),   // 3
        info("wp", &[6, 8, 1, 1]),  // 4
        info("bp", &[6]),           // 5
        info("p", &[2, 6, 8, 8]),   // 6
        info("we", &[12, 6, 1, 1]), // 7
        info("be", &[12]),          // 8
        info("e", &[2, 12, 8, 8]),  // 9
        info("wd", &[12, 1, 3, 3]), // 10
        info("bd", &[12]),          // 11
        info("d", &[2, 12, 8, 8]),  // 12
        info("wq", &[6, 12, 1, 1]), // 13
        info("bq", &[6]),           // 14
        info("q", &[2, 6, 8, 8]),   // 15
        info("wh", &[4, 3, 2, 2]),  // 16
        info("bh", &[4]),           // 17
        info(
            "h",
            &[
                2,
                4,
                if padded_head { 5 } else { 4 },
                if padded_head { 5 } else { 4 },
            ],
        ), // 18
    ];
    let proj = Conv {
        residual: true,
        ..conv(1, 1, 0, 1, None)
    };
    let head = conv(2, 2, usize::from(padded_head), 2, Some(UnaryOp::Relu));
    let graph = Graph {
        tensors,
        nodes: vec![
            node(
                "stem",
                Op::Conv(conv(3, 1, 1, 1, Some(UnaryOp::Relu))),
                &[0, 1, 2],
                &[3],
            ),
            node(
                "project1",
                Op::Conv(conv(1, 1, 0, 1, None)),
                &[3, 4, 5],
                &[6],
            ),
            node(
                "expand",
                Op::Conv(conv(1, 1, 0, 1, clip6)),
                &[6, 7, 8],
                &[9],
            ),
            node(
                "depthwise",
                Op::Conv(conv(3, 1, 1, 12, clip6)),
                &[9, 10, 11],
                &[12],
            ),
            node("project2", Op::Conv(proj), &[12, 13, 14, 6], &[15]),
            node("head", Op::Conv(head), &[15, 16, 17], &[18]),
        ],
        inputs: vec![0],
        outputs: vec![18],
    };
    let mut consts: Vec<Option<Tensor>> = vec![None; graph.tensors.len()];
    for (t, seed) in [
        (1, 1),
        (2, 2),
        (4, 3),
        (5, 4),
        (7, 5),
        (8, 6),
        (10, 7),
        (11, 8),
    ]
    .into_iter()
    .chain([(13, 9), (14, 10), (16, 11), (17, 12)])
    {
        consts[t] = Some(values(&graph.tensors[t].shape, seed));
    }
    (graph, consts)
}

/// The lowering with only the biases carried (no fusion, which the CPU could not run), from
/// every convolution that can (at these sizes our own kernels would run them in f32).
fn carried(graph: &Graph, precision: Precision) -> Lowered {
    let mut l = lower_fusing(graph, precision, &[], &vec![true; graph.nodes.len()]);
    carry_biases_where(&mut l, &[], |_, _, _| true);
    l
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The carried graph run by the CPU's kernels against the model itself.
fn same_values(graph: Graph, consts: Vec<Option<Tensor>>) -> Lowered {
    let m = model(graph, &consts);
    let graph = m.graph().clone();
    let l = carried(&graph, Precision::F32);
    let m2 = l.cpu_model(&m).unwrap();
    let x = values(&graph.tensors[0].shape, 99);
    let run = |m| {
        let mut s = Session::new(m, SessionOptions::with_threads(1)).unwrap();
        s.run_tensors(std::slice::from_ref(&x)).unwrap()[0]
            .to_f32_vec()
            .unwrap()
    };
    let (want, got) = (run(m), run(m2));
    let d = max_diff(&want, &got);
    assert!(d < 1e-5, "carried graph differs by {d}");
    l
}

#[test]
fn projections_carry_their_biases_to_their_readers() {
    let (graph, consts) = blocks(false);
    let l = same_values(graph, consts);
    let g = &l.graph;
    let conv = |k: usize| match &g.nodes[k].op {
        Op::Conv(c) => c.clone(),
        _ => unreachable!(),
    };
    // Both projections lose their bias; the second keeps its residual, computed in place only
    // where cuDNN runs it (a 1×1 layer over 8×8 is our pointwise kernel's in f32).
    assert!(!conv(1).has_bias && !conv(4).has_bias && conv(4).residual);
    assert_eq!(g.nodes[4].inputs, vec![12, 13, 6]);
    assert_eq!(l.bias_carried, vec![false, true, false, false, true, false]);
    assert_eq!(l.carried, vec![false, true, true, false, true, true]);
    // The expand layer's bias adds We ⊛ bp; the head's adds Wh ⊛ (bq + bp).
    let e_bias = g.nodes[2].inputs[2];
    assert_eq!(
        l.derived[&e_bias],
        Derived {
            base: Some(8),
            add: None,
            through: Some((7, 1, 5)),
        }
    );
    let q_off = l.derived.iter().find(|(_, d)| d.base == Some(14)).unwrap();
    assert_eq!(q_off.1.add, Some(5));
    let h_bias = g.nodes[5].inputs[2];
    assert_eq!(l.derived[&h_bias].through, Some((16, 2, *q_off.0)));
}

#[test]
fn a_padded_reader_keeps_the_bias_where_it_is() {
    let (graph, consts) = blocks(true);
    let l = same_values(graph, consts);
    let g = &l.graph;
    // The head pads the second projection's output (zeros are not zero − offset): that
    // projection keeps its bias, and adds the first's (arriving through its residual).
    let Op::Conv(p2) = &g.nodes[4].op else {
        unreachable!()
    };
    assert!(p2.has_bias);
    let b = g.nodes[4].inputs[2];
    assert_eq!(
        l.derived[&b],
        Derived {
            base: Some(14),
            add: Some(5),
            through: None,
        }
    );
    assert_eq!(
        l.bias_carried,
        vec![false, true, false, false, false, false]
    );
    assert!(l.in_place.is_empty());
}

#[test]
fn nothing_is_carried_past_a_graph_output_or_an_unfused_reader() {
    let (graph, consts) = blocks(false);
    let mut graph = model(graph, &consts).graph().clone();
    let carry = |graph: &Graph, unfused: &[bool]| {
        let mut l = lower_fusing(graph, Precision::F32, &[], &[true; 6]);
        carry_biases_where(&mut l, unfused, |_, _, _| true);
        l.bias_carried
    };
    // The first projection's output is a graph output: it keeps its bias (the second carries
    // its own).
    graph.outputs.push(6);
    assert_eq!(
        carry(&graph, &[]),
        vec![false, false, false, false, true, false]
    );
    graph.outputs.pop();
    // The expand layer flagged unfused (its kernel failed to build): the first projection
    // keeps its bias; the second still carries its own.
    let mut unfused = vec![false; 6];
    unfused[2] = true;
    assert_eq!(
        carry(&graph, &unfused),
        vec![false, false, false, false, true, false]
    );
    // Our own kernels run these small layers, their bias in their epilogue: nothing moves.
    assert_eq!(lower(&graph, Precision::F32).bias_carried, vec![false; 6]);
    assert_eq!(lower(&graph, Precision::F16).bias_carried, vec![false; 6]);
}

#[test]
fn in_f16_the_derived_biases_are_f16_and_in_place_pairs_need_cudnn() {
    let (graph, consts) = blocks(false);
    let l = carried(model(graph, &consts).graph(), Precision::F16);
    assert_eq!(l.bias_carried, vec![false, true, false, false, true, false]);
    assert!(!l.derived.is_empty());
    for &t in l.derived.keys() {
        assert_eq!(l.graph.tensors[t].dtype, crate::DType::F16);
    }
    // Over 8×8 planes the second projection runs on the direct kernel: no in-place pair.
    // EfficientNet's 144 → 24 over 56×56 runs on cuDNN.
    assert!(l.in_place.is_empty());
    let xf = crate::ir::Fact::new(crate::DType::F16, vec![1, 144, 56, 56]);
    let yf = crate::ir::Fact::new(crate::DType::F16, vec![1, 24, 56, 56]);
    let proj = Conv {
        residual: true,
        has_bias: false,
        ..conv(1, 1, 0, 1, None)
    };
    assert!(nn::conv::runs_on_cudnn(&proj, &xf, &yf));
}

#[test]
fn derived_bias_arithmetic() {
    // Two output channels in two groups of one input channel each, a 1×2 window: channel k
    // adds its own taps times its group's offset.
    let d = Derived {
        base: Some(0),
        add: Some(1),
        through: Some((2, 2, 3)),
    };
    let v = |t: TensorId| -> Result<(Vec<f32>, Vec<usize>)> {
        Ok(match t {
            0 => (vec![1.0, 2.0], vec![2]),
            1 => (vec![10.0, 20.0], vec![2]),
            2 => (vec![1.0, 2.0, 3.0, 4.0], vec![2, 1, 1, 2]),
            _ => (vec![0.5, -1.0], vec![2]),
        })
    };
    assert_eq!(
        d.eval(2, v).unwrap(),
        vec![1.0 + 10.0 + 3.0 * 0.5, 2.0 + 20.0 - 7.0]
    );
    // A length that does not match is an error, not a panic.
    assert!(d.eval(3, v).is_err());
}

/// Two residual MBConv blocks at sizes where cuDNN runs the projections in f16 (24 → 144 →
/// 24 channels over 56×56): stem → [expand (ReLU6) → depthwise → project (+ residual)] × 2 →
/// head (ReLU) → average pool.
fn residual_blocks() -> (Graph, Vec<Option<Tensor>>) {
    let clip6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
    // The stem: 3 → 8 channels over 112×112 on the direct kernel, with a 2×2 max pool it
    // absorbs (so the device graph loses a node before the carrying ones), then 8 → 24.
    let mut tensors = vec![
        info("x", &[1, 3, 112, 112]),  // 0
        info("ws", &[8, 3, 3, 3]),     // 1
        info("bs", &[8]),              // 2
        info("s0", &[1, 8, 112, 112]), // 3
        info("s1", &[1, 8, 56, 56]),   // 4
        info("wt", &[24, 8, 1, 1]),    // 5
        info("bt", &[24]),             // 6
        info("s", &[1, 24, 56, 56]),   // 7
    ];
    let pool = Op::Pool(crate::ir::ops::Pool {
        kind: crate::ir::ops::PoolKind::Max,
        kernel: vec![2, 2],
        strides: vec![2, 2],
        pads: vec![0; 4],
        dilations: vec![1, 1],
        ceil_mode: false,
        count_include_pad: false,
    });
    let mut nodes = vec![
        node(
            "stem",
            Op::Conv(conv(3, 1, 1, 1, Some(UnaryOp::Relu))),
            &[0, 1, 2],
            &[3],
        ),
        node("pool", pool, &[3], &[4]),
        node(
            "widen",
            Op::Conv(conv(1, 1, 0, 1, Some(UnaryOp::Relu))),
            &[4, 5, 6],
            &[7],
        ),
    ];
    let mut at = 7;
    for b in 0..2 {
        let t = tensors.len();
        tensors.extend([
            info("we", &[144, 24, 1, 1]), // t
            info("be", &[144]),
            info("e", &[1, 144, 56, 56]),
            info("wd", &[144, 1, 3, 3]), // t + 3
            info("bd", &[144]),
            info("d", &[1, 144, 56, 56]),
            info("wp", &[24, 144, 1, 1]), // t + 6
            info("bp", &[24]),
            info("p", &[1, 24, 56, 56]),
        ]);
        let proj = Conv {
            residual: true,
            ..conv(1, 1, 0, 1, None)
        };
        nodes.extend([
            node(
                &format!("expand{b}"),
                Op::Conv(conv(1, 1, 0, 1, clip6)),
                &[at, t, t + 1],
                &[t + 2],
            ),
            node(
                &format!("dw{b}"),
                Op::Conv(conv(3, 1, 1, 144, clip6)),
                &[t + 2, t + 3, t + 4],
                &[t + 5],
            ),
            node(
                &format!("project{b}"),
                Op::Conv(proj),
                &[t + 5, t + 6, t + 7, at],
                &[t + 8],
            ),
        ]);
        at = t + 8;
    }
    let t = tensors.len();
    tensors.extend([
        info("wh", &[64, 24, 1, 1]),
        info("bh", &[64]),
        info("h", &[1, 64, 56, 56]),
        info("y", &[1, 64, 1, 1]),
    ]);
    nodes.push(node(
        "head",
        Op::Conv(conv(1, 1, 0, 1, Some(UnaryOp::Relu))),
        &[at, t, t + 1],
        &[t + 2],
    ));
    nodes.push(node(
        "pool",
        Op::GlobalPool(crate::ir::ops::GlobalPool {
            kind: crate::ir::ops::PoolKind::Avg,
        }),
        &[t + 2],
        &[t + 3],
    ));
    let graph = Graph {
        tensors,
        nodes,
        inputs: vec![0],
        outputs: vec![t + 3],
    };
    let consts = (0..graph.tensors.len())
        .map(|i| {
            let name = &graph.tensors[i].name;
            (name.starts_with('w') || name.starts_with('b'))
                .then(|| values(&graph.tensors[i].shape, i as u64 + 1))
        })
        .collect();
    (graph, consts)
}

#[test]
fn carried_biases_and_in_place_residuals_match_the_cpu() {
    let (g, consts) = residual_blocks();
    let m = model(g, &consts);
    // Decided without a GPU: in f16 both projections carry their bias, the second in place.
    let l = lower(m.graph(), Precision::F16);
    let projects: Vec<usize> = (0..m.graph().nodes.len())
        .filter(|&k| m.graph().nodes[k].name.starts_with("project"))
        .collect();
    assert!(
        projects.iter().all(|&k| l.bias_carried[k]),
        "{:?}",
        l.bias_carried
    );
    // The pool went into the stem's kernel: `carried` follows the device graph's nodes.
    assert_eq!(l.absorbed[1], Some(0));
    assert_eq!(l.carried.len(), l.graph.nodes.len());
    for (n, &c) in l.graph.nodes.iter().zip(&l.carried) {
        let touched = n.name.starts_with("project") || n.name == "expand1" || n.name == "head";
        assert_eq!(c, touched, "{}", n.name);
    }
    assert_eq!(l.in_place.len(), 2);
    let x = values(&[1, 3, 112, 112], 1);
    let runs = [
        (Precision::F32, true, 1e-4f32),
        (Precision::F32, false, 1e-4),
        (Precision::F16, true, 2e-2),
        (Precision::F16, false, 2e-2),
    ];
    crate::cuda::ops::testing::session_matches_cpu(&m, &x, &runs, |_, _, _| {});
    eprintln!("carried biases, in-place residuals: fp32 and fp16 match the CPU");
}

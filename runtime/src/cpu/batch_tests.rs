//! The batch cut between threads: a small CNN (convolution with ReLU, a second one adding the
//! first's output, max pooling, a per-channel scale, flatten, Gemm, Softmax, and a global
//! average pool as a second output) run cut and whole must agree; graphs that mix the items of
//! their batch must stay whole.

use std::sync::Arc;

use crate::cpu::{Session, SessionOptions};
use crate::ir::ops::{
    Binary, BinaryOp, Conv, Expand, Gemm, GlobalPool, NearestMode, Pool, PoolKind, Reshape, Resize,
    ResizeCoord, ResizeMode, Softmax, Transpose, UnaryOp,
};
use crate::ir::{Graph, Op};
use crate::tensor::DType;
use crate::testing::{info, model as model_of, node, values};
use crate::{Model, Tensor};

/// Ways to make the graph mix the items of its batch (or not).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Variant {
    /// Every op keeps the items apart.
    Separable,
    /// The Softmax runs over the batch axis.
    SoftmaxOverBatch,
    /// The scale is a constant with one row per item, not one broadcast over the batch.
    ScalePerItem,
    /// The logits are transposed (a 4 × 4 Gemm output, batch 4): items and classes swap.
    TransposedLogits,
}

fn conv(residual: bool) -> Op {
    Op::Conv(Conv {
        kernel: vec![3, 3],
        strides: vec![1, 1],
        pads: vec![1, 1, 1, 1],
        dilations: vec![1, 1],
        group: 1,
        has_bias: true,
        act: Some(UnaryOp::Relu),
        residual,
    })
}

fn model(n: usize, variant: Variant) -> Arc<Model> {
    let classes = if variant == Variant::TransposedLogits {
        n
    } else {
        5
    };
    let scale = if variant == Variant::ScalePerItem {
        [n, 8, 1, 1]
    } else {
        [1, 8, 1, 1]
    };
    let mut tensors = vec![
        info("x", &[n, 3, 6, 6]),      // 0
        info("w1", &[8, 3, 3, 3]),     // 1
        info("b1", &[8]),              // 2
        info("c1", &[n, 8, 6, 6]),     // 3
        info("w2", &[8, 8, 3, 3]),     // 4
        info("b2", &[8]),              // 5
        info("c2", &[n, 8, 6, 6]),     // 6
        info("p", &[n, 8, 3, 3]),      // 7
        info("k", &scale),             // 8
        info("s", &[n, 8, 3, 3]),      // 9
        info("flat", &[n, 72]),        // 10
        info("W", &[classes, 72]),     // 11
        info("B", &[classes]),         // 12
        info("logits", &[n, classes]), // 13
        info("probs", &[n, classes]),  // 14
        info("mean", &[n, 8, 1, 1]),   // 15
    ];
    let mut nodes = vec![
        node("conv1", conv(false), &[0, 1, 2], &[3]),
        node("conv2", conv(true), &[3, 4, 5, 3], &[6]),
        node(
            "pool",
            Op::Pool(Pool {
                kind: PoolKind::Max,
                kernel: vec![2, 2],
                strides: vec![2, 2],
                pads: vec![0; 4],
                dilations: vec![1, 1],
                ceil_mode: false,
                count_include_pad: false,
            }),
            &[6],
            &[7],
        ),
        node(
            "scale",
            Op::Binary(Binary { op: BinaryOp::Mul }),
            &[7, 8],
            &[9],
        ),
        node(
            "flatten",
            Op::Reshape(Reshape { shape: vec![n, 72] }),
            &[9],
            &[10],
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
            &[10, 11, 12],
            &[13],
        ),
    ];
    let mut logits = 13;
    if variant == Variant::TransposedLogits {
        tensors.push(info("logits_t", &[classes, n])); // 16
        nodes.push(node(
            "transpose",
            Op::Transpose(Transpose { perm: vec![1, 0] }),
            &[13],
            &[16],
        ));
        logits = 16;
    }
    let axis = if variant == Variant::SoftmaxOverBatch {
        0
    } else {
        1
    };
    nodes.push(node(
        "softmax",
        Op::Softmax(Softmax { axis, log: false }),
        &[logits],
        &[14],
    ));
    nodes.push(node(
        "mean",
        Op::GlobalPool(GlobalPool {
            kind: PoolKind::Avg,
        }),
        &[9],
        &[15],
    ));
    let graph = Graph {
        tensors,
        nodes,
        inputs: vec![0],
        outputs: vec![14, 15],
    };
    let consts: Vec<Option<Tensor>> = (0..graph.tensors.len())
        .map(|i| match i {
            1 | 2 | 4 | 5 | 8 | 11 | 12 => Some(values(&graph.tensors[i].shape, i as u64)),
            _ => None,
        })
        .collect();
    model_of(graph, &consts)
}

/// One op from input `x` (`shape`) to output `y` (`out`), no constants.
fn one_op(op: Op, shape: &[usize], out: &[usize]) -> Arc<Model> {
    let graph = Graph {
        tensors: vec![info("x", shape), info("y", out)],
        nodes: vec![node("op", op, &[0], &[1])],
        inputs: vec![0],
        outputs: vec![1],
    };
    model_of(graph, &[None, None])
}

/// Runs `m` on `x` with `threads` threads, the batch cut or not; returns the outputs and how
/// many parts ran.
fn run(m: &Arc<Model>, x: &Tensor, threads: usize, cut: bool) -> (Vec<Vec<f32>>, usize) {
    let opts = SessionOptions {
        batch_split: cut,
        ..SessionOptions::with_threads(threads)
    };
    let mut s = Session::new(m.clone(), opts).unwrap();
    let out = s.run_tensors(std::slice::from_ref(x)).unwrap();
    let out = out.iter().map(|t| t.to_f32_vec().unwrap()).collect();
    (out, s.parts())
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len());
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            assert!(
                (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                "{what}: output {k}[{i}] {p} against {q}"
            );
        }
    }
}

#[test]
fn a_cut_batch_gives_the_whole_batch_outputs() {
    for (n, threads) in [(4, 2), (4, 4), (8, 2)] {
        let m = model(n, Variant::Separable);
        let part = super::split(m.graph(), threads).expect("the graph keeps items apart");
        assert_eq!(part.tensors[0].shape, [n / threads, 3, 6, 6]);
        assert_eq!(part.tensors[14].shape, [n / threads, 5]);
        let Op::Reshape(r) = &part.nodes[4].op else {
            panic!("node 4 is the flatten")
        };
        assert_eq!(r.shape, [n / threads, 72]);
        // Two inputs in a row: each run reads its own input into every part.
        for seed in [100, 200] {
            let x = values(&[n, 3, 6, 6], seed);
            let (whole, p1) = run(&m, &x, 1, true);
            let (cut, parts) = run(&m, &x, threads, true);
            let (layers, p2) = run(&m, &x, threads, false);
            assert_eq!((p1, parts, p2), (1, threads, 1));
            let what = format!("batch {n}, {threads} threads, input {seed}");
            assert_close(&cut, &whole, &what);
            assert_close(&layers, &whole, &what);
        }
    }
}

#[test]
fn a_session_runs_every_input_it_is_given() {
    let m = model(4, Variant::Separable);
    let mut s = Session::new(m.clone(), SessionOptions::with_threads(2)).unwrap();
    assert_eq!(s.parts(), 2);
    for seed in [1, 2, 3] {
        let x = values(&[4, 3, 6, 6], seed);
        let got: Vec<Vec<f32>> = s
            .run_tensors(std::slice::from_ref(&x))
            .unwrap()
            .iter()
            .map(|t| t.to_f32_vec().unwrap())
            .collect();
        let (want, _) = run(&m, &x, 1, true);
        assert_close(&got, &want, &format!("input {seed}"));
    }
}

#[test]
fn graphs_that_mix_items_or_batches_threads_do_not_divide_stay_whole() {
    let cases = [
        (4, 2, Variant::SoftmaxOverBatch),
        (4, 2, Variant::ScalePerItem),
        (4, 2, Variant::TransposedLogits),
        (3, 2, Variant::Separable),
        (1, 2, Variant::Separable),
    ];
    for (n, threads, variant) in cases {
        let m = model(n, variant);
        assert!(
            super::split(m.graph(), threads).is_err(),
            "{variant:?}, batch {n}, {threads} threads: must not be cut"
        );
        let x = values(&[n, 3, 6, 6], 7);
        let (whole, _) = run(&m, &x, 1, true);
        let (got, parts) = run(&m, &x, threads, true);
        assert_eq!(parts, 1, "{variant:?}");
        assert_close(&got, &whole, &format!("{variant:?}"));
    }
}

/// Ops whose first output dimension equals the batch by coincidence or whose batch axis does not
/// map onto itself: found in review, each gave the wrong rows when cut.
#[test]
fn ops_that_only_look_batched_stay_whole() {
    let resize = |coord, mode| {
        Op::Resize(Resize {
            mode,
            coord,
            scales: vec![1.0, 1.0],
            out_shape: vec![4, 2],
        })
    };
    let ceil = ResizeMode::Nearest(NearestMode::Ceil);
    let cases = [
        // x [2, 3] expanded to [2, 2, 3]: every output item is the whole of x.
        (
            "Expand raising the rank",
            one_op(
                Op::Expand(Expand {
                    shape: vec![2, 2, 3],
                }),
                &[2, 3],
                &[2, 2, 3],
            ),
            vec![2, 3],
        ),
    ];
    for (what, m, shape) in cases {
        assert!(
            super::split(m.graph(), 2).is_err(),
            "{what}: must not be cut"
        );
        let x = values(&shape, 11);
        let (whole, _) = run(&m, &x, 1, true);
        let (got, parts) = run(&m, &x, 2, true);
        assert_eq!(parts, 1, "{what}");
        assert_close(&got, &whole, what);
    }
    // A Resize whose batch axis has scale 1 keeps its items under every coordinate rule (even
    // TensorFlow's half pixel, whose x + 0.5 rounded up would read item i + 1): it is cut, and
    // gives the same rows.
    for coord in [ResizeCoord::HalfPixel, ResizeCoord::TfHalfPixelForNn] {
        for mode in [ceil, ResizeMode::Linear] {
            let m = one_op(resize(coord, mode), &[4, 2], &[4, 2]);
            assert!(super::split(m.graph(), 2).is_ok());
            let x = values(&[4, 2], 12);
            let (whole, _) = run(&m, &x, 1, true);
            let (got, parts) = run(&m, &x, 2, true);
            assert_eq!(parts, 2);
            assert_close(&got, &whole, "Resize with a batch axis of scale 1");
        }
    }
}

#[test]
fn an_input_of_the_wrong_length_is_refused_cut_or_whole() {
    let m = model(4, Variant::Separable);
    for threads in [1, 2] {
        let mut s = Session::new(m.clone(), SessionOptions::with_threads(threads)).unwrap();
        let x = values(&[4, 3, 6, 6], 1);
        let bytes = x.bytes();
        for data in [&bytes[..bytes.len() - 4], &bytes[4..], &[][..]] {
            let short = crate::tensor::TensorView {
                dtype: DType::F32,
                shape: &[4, 3, 6, 6],
                data,
            };
            let e = s.set_input(0, short).unwrap_err().to_string();
            assert!(e.contains("bytes"), "{threads} thread(s): {e}");
        }
    }
}

#[test]
fn inspect_names_the_thread_counts_or_the_node_that_mixes_items() {
    let m = model(8, Variant::Separable);
    assert_eq!(super::thread_counts(m.graph(), 64), Ok(vec![2, 4, 8]));
    assert_eq!(super::thread_counts(m.graph(), 4), Ok(vec![2, 4]));
    let m = model(8, Variant::SoftmaxOverBatch);
    let e = super::thread_counts(m.graph(), 64).unwrap_err();
    assert!(e.contains("\"softmax\" (Softmax)"), "{e}");
    let e = super::thread_counts(model(1, Variant::Separable).graph(), 64).unwrap_err();
    assert!(e.contains("the batch is 1"), "{e}");
    let e = super::thread_counts(model(7, Variant::Separable).graph(), 4).unwrap_err();
    assert!(e.contains("divides"), "{e}");
}

//! The fp16 lowering on small graphs: no GPU needed.

use super::*;
use crate::ir::ops::{Binary, BinaryOp, Gather, Gemm, Softmax, UnaryOp};

fn t(name: &str, dtype: DType, shape: &[usize]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        weight: None,
        quant: None,
    }
}

fn weight(name: &str, shape: &[usize], offset: u64, stored: Option<DType>) -> TensorInfo {
    let n: usize = shape.iter().product();
    TensorInfo {
        weight: Some(WeightRef {
            offset,
            len: (n * stored.unwrap_or(DType::F32).size()) as u64,
            stored,
        }),
        ..t(name, DType::F32, shape)
    }
}

fn node(name: &str, op: Op, inputs: &[usize], outputs: &[usize]) -> Node {
    Node {
        name: name.into(),
        op,
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
    }
}

/// x [2,8] f32 and ids [3] i64 in; Gemm(x, W, b) + ReLU → h; Gather(h rows by ids) → g;
/// Softmax(g) → out (f32); Equal(h, h) → mask (bool, CPU). Weights f16-stored when `f16`.
fn model(f16: bool) -> Graph {
    let s = f16.then_some(DType::F16);
    let g = Graph {
        tensors: vec![
            t("x", DType::F32, &[2, 8]),     // 0
            weight("W", &[4, 8], 0, s),      // 1
            weight("b", &[4], 64, s),        // 2
            t("h", DType::F32, &[2, 4]),     // 3
            t("ids", DType::I64, &[3]),      // 4
            t("g", DType::F32, &[3, 4]),     // 5
            t("out", DType::F32, &[3, 4]),   // 6
            t("mask", DType::Bool, &[2, 4]), // 7
        ],
        nodes: vec![
            node(
                "fc",
                Op::Gemm(Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_a: false,
                    trans_b: true,
                    act: Some(UnaryOp::Relu),
                }),
                &[0, 1, 2],
                &[3],
            ),
            node("pick", Op::Gather(Gather { axis: 0 }), &[3, 4], &[5]),
            node(
                "softmax",
                Op::Softmax(Softmax {
                    axis: 1,
                    log: false,
                }),
                &[5],
                &[6],
            ),
            node(
                "eq",
                Op::Binary(Binary {
                    op: BinaryOp::Equal,
                }),
                &[3, 3],
                &[7],
            ),
        ],
        inputs: vec![0, 4],
        outputs: vec![6, 7],
    };
    g.validate().unwrap();
    g
}

/// The lowered graph is well formed: every value defined once before it is read, each tensor
/// the shape of the model tensor it holds, each model node's inputs and outputs in one float
/// dtype as its kernel needs, each inserted cast converting between f32 and f16. (The IR's
/// `validate` cannot judge it: its shape inference is f32-only for most float ops.)
fn check_consistent(l: &Lowered, model: &Graph) {
    let g = &l.graph;
    let mut defined: Vec<bool> = g.tensors.iter().map(|t| t.weight.is_some()).collect();
    for &i in &g.inputs {
        defined[i] = true;
    }
    for (t, info) in g.tensors.iter().enumerate() {
        assert_eq!(
            info.shape, model.tensors[l.origin[t]].shape,
            "{}",
            info.name
        );
    }
    for (node, origin) in g.nodes.iter().zip(&l.node_origin) {
        for &i in &node.inputs {
            assert!(
                defined[i],
                "{} reads {} before it is written",
                node.name, g.tensors[i].name
            );
        }
        for &o in &node.outputs {
            assert!(!defined[o], "{} written twice", g.tensors[o].name);
            defined[o] = true;
        }
        let floats: Vec<DType> = node
            .inputs
            .iter()
            .chain(&node.outputs)
            .map(|&t| g.tensors[t].dtype)
            .filter(|&d| is_float(d))
            .collect();
        match origin {
            Some(_) => assert!(
                floats.windows(2).all(|w| w[0] == w[1]),
                "{}: mixed float dtypes {floats:?}",
                node.name
            ),
            None => {
                assert!(matches!(node.op, Op::Cast(_)));
                assert_eq!(floats.len(), 2);
                assert_ne!(floats[0], floats[1]);
            }
        }
    }
    for &o in &g.outputs {
        assert!(defined[o]);
    }
}

fn casts(l: &Lowered) -> Vec<(String, DType)> {
    l.graph
        .nodes
        .iter()
        .zip(&l.node_origin)
        .filter(|(_, o)| o.is_none())
        .map(|(n, _)| match &n.op {
            Op::Cast(c) => (l.graph.tensors[n.inputs[0]].name.clone(), c.to),
            other => panic!("inserted node {} is not a cast", other.name()),
        })
        .collect()
}

#[test]
fn default_precision_follows_the_stored_weights() {
    assert_eq!(Precision::of(&model(true)), Precision::F16);
    assert_eq!(Precision::of(&model(false)), Precision::F32);
}

#[test]
fn fp32_runs_the_graph_as_it_is() {
    let g = model(false);
    let l = lower(&g, Precision::F32);
    assert_eq!(l.graph, g);
    assert!(casts(&l).is_empty());
    assert_eq!(l.node_dtype[0], Some(DType::F32));
    assert!(l.placements[0].is_gpu());
    assert!(!l.placements[3].is_gpu(), "Equal has no CUDA kernel");
}

#[test]
fn fp16_narrows_float_values_with_one_cast_at_each_edge() {
    let g = model(true);
    // Fusion off: the edge casts stay kernels (else these small ones run on the host, below).
    let l = lower_fusing(&g, Precision::F16, &[], &[true; 4]);
    check_consistent(&l, &g);
    // The API boundary is unchanged: f32 x and i64 ids in, f32 out, bool mask out.
    assert_eq!(l.graph.inputs, g.inputs);
    let io =
        |ids: &[usize]| -> Vec<DType> { ids.iter().map(|&i| l.graph.tensors[i].dtype).collect() };
    assert_eq!(io(&l.graph.inputs), [DType::F32, DType::I64]);
    assert_eq!(io(&l.graph.outputs), [DType::F32, DType::Bool]);
    // Activations in f16; the integer ids untouched.
    for name in ["h", "g"] {
        let t = l.graph.tensors.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.dtype, DType::F16, "{name}");
    }
    assert_eq!(l.graph.tensors[4].dtype, DType::I64);
    // Casts: x in, h back to f32 for the CPU's Equal (made once), out at exit.
    assert_eq!(
        casts(&l),
        [
            ("x".to_string(), DType::F16),
            ("h".to_string(), DType::F32),
            ("out".to_string(), DType::F32)
        ]
    );
    assert_eq!(
        l.node_dtype,
        [
            Some(DType::F16),
            Some(DType::F16),
            Some(DType::F16),
            Some(DType::F32)
        ]
    );
    assert!(l.placements[..3].iter().all(Placement::is_gpu));
    assert!(matches!(&l.placements[3], Placement::Cpu(why) if why.contains("Equal")));
    // The Gemm reads narrowed constants that come from W and b.
    let fc = l.graph.nodes.iter().find(|n| n.name == "fc").unwrap();
    for (&d, model_id) in fc.inputs[1..].iter().zip([1, 2]) {
        let info = &l.graph.tensors[d];
        assert_eq!(info.dtype, DType::F16);
        assert!(info.weight.is_some());
        assert_eq!(l.origin[d], model_id);
    }
    // Every model node is run once, in order, with the casts in between.
    let order: Vec<usize> = l.node_origin.iter().flatten().copied().collect();
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn fp16_keeps_f32_for_nodes_without_an_f16_kernel() {
    // QuantizeLinear takes an f32 scale, so it has no f16 form: its input is cast back.
    let mut g = model(true);
    let x = g.tensors.len();
    g.tensors.push(t("q", DType::U8, &[3, 4]));
    g.tensors.push(TensorInfo {
        weight: Some(WeightRef {
            offset: 128,
            len: 4,
            stored: None,
        }),
        ..t("scale", DType::F32, &[])
    });
    g.nodes.push(node(
        "quant",
        Op::QuantizeLinear(crate::ir::ops::QuantizeLinear {
            axis: None,
            to: DType::U8,
        }),
        &[6, x + 1],
        &[x],
    ));
    g.outputs = vec![x];
    g.validate().unwrap();
    let l = lower(&g, Precision::F16);
    check_consistent(&l, &g);
    assert_eq!(l.node_dtype[4], Some(DType::F32));
    let quant = l.graph.nodes.iter().find(|n| n.name == "quant").unwrap();
    assert_eq!(l.graph.tensors[quant.inputs[0]].dtype, DType::F32);
    assert_eq!(quant.inputs[1], x + 1, "the f32 scale is read as stored");
}

#[test]
fn constants_convert_on_upload() {
    let g = model(true);
    let l = lower(&g, Precision::F16);
    let w: Vec<f32> = (0..32).map(|i| i as f32 / 3.0).collect();
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = [4usize, 8];
    let fc = l.graph.nodes.iter().find(|n| n.name == "fc").unwrap();
    let dev = l
        .constant(fc.inputs[1], |id| {
            (id == 1).then_some(TensorView {
                dtype: DType::F32,
                shape: &shape,
                data: &bytes,
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(dev.len(), 64);
    for (k, c) in dev.chunks_exact(2).enumerate() {
        assert_eq!(
            half::f16::from_le_bytes([c[0], c[1]]),
            half::f16::from_f32(w[k])
        );
    }
    assert!(l.constant(0, |_| None).is_none(), "x is not a constant");
}

#[test]
fn conversion_rounds_to_nearest_and_refuses_other_types() {
    let x = [1.0f32, 1.0 / 3.0, 65504.0, -2.5e-8];
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let h = convert(&bytes, DType::F32, DType::F16).unwrap();
    let back = convert(&h, DType::F16, DType::F32).unwrap();
    let back: Vec<f32> = back
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(back[0], 1.0);
    assert!((back[1] - 1.0 / 3.0).abs() < 1e-3);
    assert_eq!(back[2], 65504.0);
    assert!(back[3].abs() < 1e-7);
    assert!(convert(&bytes, DType::F32, DType::I64).is_err());
}

#[test]
fn small_edge_casts_run_on_the_host() {
    let g = model(true);
    let l = lower(&g, Precision::F16);
    check_consistent(&l, &g);
    // x (16 values) comes in as f16, narrowed by the host; out (12) leaves as f16, widened by
    // the host; only h's cast for the CPU's Equal stays a kernel.
    assert_eq!(l.host_inputs, [true, false]);
    assert_eq!(l.host_outputs, [true, false]);
    let dtypes =
        |ids: &[usize]| -> Vec<DType> { ids.iter().map(|&i| l.graph.tensors[i].dtype).collect() };
    assert_eq!(dtypes(&l.graph.inputs), [DType::F16, DType::I64]);
    assert_eq!(dtypes(&l.graph.outputs), [DType::F16, DType::Bool]);
    assert_eq!(l.origin[l.graph.inputs[0]], 0);
    assert_eq!(l.origin[l.graph.outputs[0]], 6);
    assert_eq!(casts(&l), [("h".to_string(), DType::F32)]);
    // Past HOST_CAST_MAX values the input's cast stays a kernel.
    let mut big = model(true);
    let rows = HOST_CAST_MAX / 8 + 1;
    for t in [0, 3, 7] {
        big.tensors[t].shape[0] = rows;
    }
    big.validate().unwrap();
    let l = lower(&big, Precision::F16);
    check_consistent(&l, &big);
    assert_eq!(l.host_inputs, [false, false]);
    assert_eq!(l.host_outputs, [true, false]);
    assert_eq!(l.graph.inputs, big.inputs);
    // An output read by a node as well keeps its cast: here h, made an output.
    let mut g = model(true);
    g.outputs.push(3);
    let l = lower(&g, Precision::F16);
    assert_eq!(l.host_outputs, [true, false, false]);
}

#[test]
fn inspect_view_lists_placement_and_dtype_per_model_node() {
    let p = placements(&model(true), Precision::F16);
    assert_eq!(p.len(), 4);
    assert_eq!(p[0].placement, Placement::Gpu);
    assert_eq!(p[0].dtype, Some(DType::F16));
    assert_eq!(p[3].dtype, Some(DType::F32));
}

#[test]
fn a_node_kept_in_f32_is_cast_around() {
    let g = model(true);
    let l = lower_fusing(&g, Precision::F16, &[false, false, true], &[true; 4]);
    check_consistent(&l, &g);
    assert_eq!(l.node_dtype[2], Some(DType::F32));
    let names: Vec<String> = casts(&l).into_iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        ["x", "g", "h"],
        "g widened for the softmax, h for Equal; out is f32"
    );
}

/// A product cast to an integer (how MatMulInteger imports: integers as f32, MatMul, Cast to
/// i32) stays f32 in an fp16 session: f16 would overflow its sums past 65504.
#[test]
fn fp16_keeps_f32_for_values_cast_to_integers() {
    let mut g = model(true);
    let (p, i) = (g.tensors.len(), g.tensors.len() + 1);
    g.tensors.push(t("prod", DType::F32, &[2, 4]));
    g.tensors.push(t("prod_i32", DType::I32, &[2, 4]));
    g.nodes.push(node(
        "mm",
        Op::MatMul(crate::ir::ops::MatMul {}),
        &[0, 1],
        &[p],
    ));
    g.nodes.push(node(
        "to_int",
        Op::Cast(crate::ir::ops::Cast { to: DType::I32 }),
        &[p],
        &[i],
    ));
    g.outputs.push(i);
    // W is [4, 8]: x [2, 8] times Wᵀ is what Gemm computes; MatMul needs [8, 4].
    g.tensors[1].shape = vec![8, 4];
    g.nodes[0] = node(
        "fc",
        Op::Gemm(Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false,
            act: Some(UnaryOp::Relu),
        }),
        &[0, 1, 2],
        &[3],
    );
    g.validate().unwrap();
    let l = lower(&g, Precision::F16);
    check_consistent(&l, &g);
    assert_eq!(l.node_dtype[0], Some(DType::F16), "fc still runs in f16");
    assert_eq!(
        l.node_dtype[4],
        Some(DType::F32),
        "the product cast to i32 runs in f32"
    );
}

/// A product reaches its Cast to i32 through value-moving ops (Reshape, Transpose, Identity,
/// Concat): the product and every op on the way stay f32. A product rounded first (Floor) is
/// the Floor's value that is cast: the Floor stays f32, its product computes in f16.
#[test]
fn fp16_walks_back_through_moves_to_the_value_cast_to_an_integer() {
    use crate::ir::ops::{Cast, Concat, MatMul, Reshape, Transpose, Unary};
    let tensors = vec![
        t("x", DType::F32, &[2, 8]),               // 0
        weight("W", &[8, 4], 0, Some(DType::F16)), // 1
        t("p", DType::F32, &[2, 4]),               // 2: mm
        t("pr", DType::F32, &[4, 2]),              // 3: Reshape
        t("pt", DType::F32, &[2, 4]),              // 4: Transpose
        t("pi", DType::F32, &[2, 4]),              // 5: Identity
        t("q", DType::F32, &[2, 4]),               // 6: mm_other
        t("cat", DType::F32, &[4, 4]),             // 7: Concat(pi, q)
        t("cat_i32", DType::I32, &[4, 4]),         // 8
        t("r", DType::F32, &[2, 4]),               // 9: mm_rounded
        t("rf", DType::F32, &[2, 4]),              // 10: Floor
        t("rf_i32", DType::I32, &[2, 4]),          // 11
        t("s", DType::F32, &[2, 4]),               // 12: mm_float (not cast)
        t("s2", DType::F32, &[4, 2]),              // 13: Reshape of s, read as f32
    ];
    let unary = |op| Op::Unary(Unary { op });
    let to_i32 = || Op::Cast(Cast { to: DType::I32 });
    let g = Graph {
        tensors,
        nodes: vec![
            node("mm", Op::MatMul(MatMul {}), &[0, 1], &[2]),
            node(
                "view",
                Op::Reshape(Reshape { shape: vec![4, 2] }),
                &[2],
                &[3],
            ),
            node(
                "swap",
                Op::Transpose(Transpose { perm: vec![1, 0] }),
                &[3],
                &[4],
            ),
            node("same", unary(UnaryOp::Identity), &[4], &[5]),
            node("mm_other", Op::MatMul(MatMul {}), &[0, 1], &[6]),
            node("join", Op::Concat(Concat { axis: 0 }), &[5, 6], &[7]),
            node("join_to_int", to_i32(), &[7], &[8]),
            node("mm_rounded", Op::MatMul(MatMul {}), &[0, 1], &[9]),
            node("floor", unary(UnaryOp::Floor), &[9], &[10]),
            node("floor_to_int", to_i32(), &[10], &[11]),
            node("mm_float", Op::MatMul(MatMul {}), &[0, 1], &[12]),
            node(
                "view_float",
                Op::Reshape(Reshape { shape: vec![4, 2] }),
                &[12],
                &[13],
            ),
        ],
        inputs: vec![0],
        outputs: vec![8, 11, 13],
    };
    g.validate().unwrap();
    let l = lower(&g, Precision::F16);
    check_consistent(&l, &g);
    let dtype_of = |name: &str| {
        let k = g.nodes.iter().position(|n| n.name == name).unwrap();
        l.node_dtype[k]
    };
    for name in ["mm", "view", "swap", "same", "mm_other", "join", "floor"] {
        assert_eq!(dtype_of(name), Some(DType::F32), "{name} stays f32");
    }
    for name in ["mm_rounded", "mm_float", "view_float"] {
        assert_eq!(dtype_of(name), Some(DType::F16), "{name} computes in f16");
    }
}

#[test]
fn fp16_runs_quantize_dynamic_ops_in_f32_on_the_gpu() {
    // x → DynamicQuantizeMatMul (i8 W, f32 bias) → ReLU: the int8 op quantizes f32 X, so it
    // stays f32 (no f16 form) but on the GPU; the ReLU after it computes in f16.
    let mut w = weight("W", &[8, 4], 0, None);
    w.dtype = DType::I8;
    w.weight = Some(WeightRef {
        offset: 0,
        len: 32,
        stored: None,
    });
    let g = Graph {
        tensors: vec![
            t("x", DType::F32, &[2, 8]),   // 0
            w,                             // 1
            weight("b", &[4], 64, None),   // 2
            t("y", DType::F32, &[2, 4]),   // 3
            t("out", DType::F32, &[2, 4]), // 4
        ],
        nodes: vec![
            node(
                "dqmm",
                Op::DynamicQuantizeMatMul(crate::ir::ops::DynamicQuantizeMatMul {
                    w_scale: vec![0.01],
                    w_zero_point: vec![0],
                    has_bias: true,
                }),
                &[0, 1, 2],
                &[3],
            ),
            node(
                "relu",
                Op::Unary(crate::ir::ops::Unary { op: UnaryOp::Relu }),
                &[3],
                &[4],
            ),
        ],
        inputs: vec![0],
        outputs: vec![4],
    };
    g.validate().unwrap();
    let l = lower(&g, Precision::F16);
    check_consistent(&l, &g);
    assert!(l.placements[0].is_gpu(), "{:?}", l.placements[0]);
    assert_eq!(l.node_dtype[0], Some(DType::F32));
    assert_eq!(l.node_dtype[1], Some(DType::F16));
    let dqmm = l.graph.nodes.iter().find(|n| n.name == "dqmm").unwrap();
    assert_eq!(l.graph.tensors[dqmm.inputs[0]].dtype, DType::F32);
    assert_eq!(
        l.graph.tensors[dqmm.inputs[2]].dtype,
        DType::F32,
        "the bias as stored"
    );
}

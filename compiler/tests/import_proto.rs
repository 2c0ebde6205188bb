//! Importer behaviour on small models built in memory: lowering rules, folding, and errors that
//! name the node at fault. None of these may panic.

mod common;

use common::proto::*;
use edgefuse_compiler::onnx::{import_proto, validate_module};
use edgefuse_compiler::Module;
use edgefuse_runtime::ir::ops::UnaryOp;
use edgefuse_runtime::ir::Op;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::*;

fn ok(m: &ModelProto, shapes: &[(String, Vec<usize>)]) -> Module {
    let module = import_proto(m, shapes).unwrap_or_else(|e| panic!("{e:#}"));
    validate_module(&module).unwrap();
    module
}

fn err(m: &ModelProto, shapes: &[(String, Vec<usize>)]) -> String {
    match import_proto(m, shapes) {
        Ok(_) => panic!("import should fail"),
        Err(e) => format!("{e:#}"),
    }
}

fn ops(m: &Module) -> Vec<&'static str> {
    m.graph.nodes.iter().map(|n| n.op.name()).collect()
}

#[test]
fn unsupported_op_and_domain() {
    let m = model(
        17,
        vec![node("NonMaxSuppression", "nms_0", &["x"], &["y"], vec![])],
        vec![f32_in("x", &[1, 4])],
        &["y"],
        vec![],
    );
    let e = err(&m, &[]);
    assert!(
        e.contains(
            r#"node #0 "nms_0": op "NonMaxSuppression" (opset 17) is not supported by edgefuse"#
        ),
        "{e}"
    );
    let mut n = node("FusedGemm", "fg", &["x"], &["y"], vec![]);
    n.domain = "com.microsoft".into();
    let m = model(17, vec![n], vec![f32_in("x", &[1, 4])], &["y"], vec![]);
    let e = err(&m, &[]);
    assert!(
        e.contains("com.microsoft") && e.contains("node #0 \"fg\""),
        "{e}"
    );
    let m = model(
        9,
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![f32_in("x", &[1, 4])],
        &["y"],
        vec![],
    );
    assert!(err(&m, &[]).contains("opset 9"));
}

#[test]
fn input_shapes() {
    // y = Relu(x), x as given.
    let relu_over = |x| {
        model(
            13,
            vec![node("Relu", "r", &["x"], &["y"], vec![])],
            vec![x],
            &["y"],
            vec![],
        )
    };
    let x = vi("x", DataType::Float, &[D::P("N"), D::N(3), D::P("W")]);
    let m = relu_over(x);
    // W unresolved: error naming input and dim, suggesting --input.
    let e = err(&m, &[]);
    assert!(
        e.contains("\"x\"") && e.contains("dimension 2") && e.contains("--input x="),
        "{e}"
    );
    // Given: ok; the graph output is a node output named "y".
    let module = ok(&m, &[("x".into(), vec![2, 3, 5])]);
    let g = &module.graph;
    assert_eq!(g.tensors[g.inputs[0]].shape, vec![2, 3, 5]);
    assert_eq!(g.tensors[g.outputs[0]].name, "y");
    // A fixed dim contradicted, a wrong rank, an unknown name.
    assert!(err(&m, &[("x".into(), vec![2, 4, 5])]).contains("dimension 1"));
    assert!(err(&m, &[("x".into(), vec![2, 3])]).contains("rank"));
    assert!(err(&m, &[("x".into(), vec![2, 3, 5]), ("z".into(), vec![1])]).contains("\"z\""));
    // Symbolic batch alone defaults to 1.
    let x = vi("x", DataType::Float, &[D::P("N"), D::N(3)]);
    let m = relu_over(x);
    let module = ok(&m, &[]);
    assert_eq!(
        module.graph.tensors[module.graph.inputs[0]].shape,
        vec![1, 3]
    );
    // A size written as 0 or -1 (some exporters' unknown) is unknown, and named as written.
    let x = vi("x", DataType::Float, &[D::N(1), D::N(0), D::N(-1)]);
    let m = relu_over(x);
    let e = err(&m, &[]);
    assert!(e.contains("dimension 1 (0) is not fixed"), "{e}");
    let module = ok(&m, &[("x".into(), vec![1, 4, 5])]);
    assert_eq!(
        module.graph.tensors[module.graph.inputs[0]].shape,
        vec![1, 4, 5]
    );
}

#[test]
fn outputs_that_are_inputs_or_constants_get_identity_nodes() {
    let m = model(
        13,
        vec![
            node("Identity", "i", &["x"], &["y"], vec![]),
            node(
                "Constant",
                "c",
                &[],
                &["k"],
                vec![AttributeProto {
                    name: "value".into(),
                    r#type: AttributeType::Tensor as i32,
                    t: Some(f32s("", &[2], &[1.0, 2.0])),
                    ..Default::default()
                }],
            ),
        ],
        vec![f32_in("x", &[1, 4])],
        &["y", "k"],
        vec![],
    );
    let module = ok(&m, &[]);
    let g = &module.graph;
    assert_eq!(g.nodes.len(), 2);
    assert!(g
        .nodes
        .iter()
        .all(|n| matches!(&n.op, Op::Unary(u) if u.op == UnaryOp::Identity)));
    let names: Vec<_> = g
        .outputs
        .iter()
        .map(|&o| g.tensors[o].name.as_str())
        .collect();
    assert_eq!(names, ["y", "k"]);
}

#[test]
fn per_node_errors_have_context_and_never_panic() {
    let x = || vec![f32_in("x", &[1, 4])];
    // Bad attribute type.
    let m = model(
        13,
        vec![node(
            "Softmax",
            "sm",
            &["x"],
            &["y"],
            vec![a_str("axis", "one")],
        )],
        x(),
        &["y"],
        vec![],
    );
    let e = err(&m, &[]);
    assert!(
        e.starts_with("node #0 \"sm\" Softmax: ") && e.contains("axis"),
        "{e}"
    );
    // Axis out of range.
    let m = model(
        13,
        vec![node(
            "Softmax",
            "sm",
            &["x"],
            &["y"],
            vec![a_int("axis", 5)],
        )],
        x(),
        &["y"],
        vec![],
    );
    assert!(err(&m, &[]).contains("out of range"));
    // Wrong input count.
    let m = model(
        13,
        vec![node("Add", "add", &["x"], &["y"], vec![])],
        x(),
        &["y"],
        vec![],
    );
    assert!(err(&m, &[]).starts_with("node #0 \"add\" Add: "));
    // Reshape with a run-time shape.
    let m = model(
        13,
        vec![node("Reshape", "rs", &["x", "s"], &["y"], vec![])],
        vec![f32_in("x", &[1, 4]), vi("s", DataType::Int64, &[D::N(2)])],
        &["y"],
        vec![],
    );
    let e = err(&m, &[]);
    assert!(
        e.contains("node #0 \"rs\" Reshape") && e.contains("constant"),
        "{e}"
    );
    // Not topologically sorted.
    let m = model(
        13,
        vec![
            node("Relu", "b", &["t"], &["y"], vec![]),
            node("Relu", "a", &["x"], &["t"], vec![]),
        ],
        x(),
        &["y"],
        vec![],
    );
    assert!(err(&m, &[]).contains("topologically"));
    // Undefined input, missing graph output.
    let m = model(
        13,
        vec![node("Relu", "r", &["q"], &["y"], vec![])],
        x(),
        &["y"],
        vec![],
    );
    assert!(err(&m, &[]).contains("\"q\""));
    let m = model(
        13,
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        x(),
        &["zz"],
        vec![],
    );
    assert!(err(&m, &[]).contains("\"zz\""));
    // Conv with a weight of the wrong rank; Gemm of a 3-D input; LSTM with odd activations.
    let m = model(
        13,
        vec![node("Conv", "cv", &["x", "w"], &["y"], vec![])],
        x(),
        &["y"],
        vec![f32s("w", &[1], &[1.0])],
    );
    assert!(err(&m, &[]).starts_with("node #0 \"cv\" Conv: "));
    let m = model(
        13,
        vec![node("Gemm", "g", &["x", "w"], &["y"], vec![])],
        vec![f32_in("x", &[1, 2, 2])],
        &["y"],
        vec![f32s("w", &[2, 2], &[1.0; 4])],
    );
    assert!(err(&m, &[]).starts_with("node #0 \"g\" Gemm: "));
    let lstm_attrs = vec![
        a_int("hidden_size", 1),
        AttributeProto {
            name: "activations".into(),
            r#type: AttributeType::Strings as i32,
            strings: vec![b"Relu".to_vec(), b"Tanh".to_vec(), b"Tanh".to_vec()],
            ..Default::default()
        },
    ];
    let m = model(
        13,
        vec![node("LSTM", "l", &["x", "w", "r"], &["y"], lstm_attrs)],
        vec![f32_in("x", &[2, 1, 3])],
        &["y"],
        vec![
            f32s("w", &[1, 4, 3], &[0.0; 12]),
            f32s("r", &[1, 4, 1], &[0.0; 4]),
        ],
    );
    assert!(err(&m, &[]).contains("activations"));
    // Resize with antialias.
    let m = model(
        18,
        vec![node(
            "Resize",
            "rz",
            &["x", "", "sc"],
            &["y"],
            vec![a_str("mode", "linear"), a_int("antialias", 1)],
        )],
        vec![f32_in("x", &[1, 1, 2, 2])],
        &["y"],
        vec![f32s("sc", &[4], &[1.0, 1.0, 2.0, 2.0])],
    );
    assert!(err(&m, &[]).contains("antialias"));
    // External data.
    let mut w = f32s("w", &[2, 2], &[]);
    w.data_location = Some(1);
    let m = model(
        13,
        vec![node("MatMul", "mm", &["x", "w"], &["y"], vec![])],
        vec![f32_in("x", &[2, 2])],
        &["y"],
        vec![w],
    );
    assert!(err(&m, &[]).contains("external"));
}

#[test]
fn lowering_rules() {
    // Flatten / Unsqueeze(13, axes input) / Squeeze → Reshape with static shapes.
    let m = model(
        13,
        vec![
            node("Flatten", "f", &["x"], &["a"], vec![a_int("axis", 2)]),
            node("Unsqueeze", "u", &["a", "ax"], &["b"], vec![]),
            node("Squeeze", "s", &["b"], &["y"], vec![]),
        ],
        vec![f32_in("x", &[2, 3, 4, 5])],
        &["y"],
        vec![i64s("ax", &[-1])],
    );
    let module = ok(&m, &[]);
    let g = &module.graph;
    assert_eq!(ops(&module), ["Reshape", "Reshape", "Reshape"]);
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![6, 20]);

    // Opset-11 Softmax on axis 1 of a 3-D input: Reshape, Softmax(1), Reshape.
    let m = model(
        11,
        vec![node("Softmax", "sm", &["x"], &["y"], vec![])],
        vec![f32_in("x", &[2, 3, 4])],
        &["y"],
        vec![],
    );
    let module = ok(&m, &[]);
    assert_eq!(ops(&module), ["Reshape", "Softmax", "Reshape"]);

    // SAME_UPPER conv pads; kernel_shape taken from the weight.
    let m = model(
        13,
        vec![node(
            "Conv",
            "c",
            &["x", "w"],
            &["y"],
            vec![a_str("auto_pad", "SAME_UPPER"), a_ints("strides", &[2, 2])],
        )],
        vec![f32_in("x", &[1, 1, 5, 6])],
        &["y"],
        vec![f32s("w", &[1, 1, 3, 3], &[0.0; 9])],
    );
    let module = ok(&m, &[]);
    match &module.graph.nodes[0].op {
        Op::Conv(c) => {
            assert_eq!(c.kernel, vec![3, 3]);
            assert_eq!(c.pads, vec![1, 0, 1, 1]);
        }
        other => panic!("{other:?}"),
    }

    // Negative pads crop (Slice), positive pads pad; Clip (opset 11+) bounds from constants.
    let m = model(
        13,
        vec![
            node("Pad", "p", &["x", "pads"], &["a"], vec![]),
            node("Clip", "cl", &["a", "lo", ""], &["y"], vec![]),
        ],
        vec![f32_in("x", &[1, 6])],
        &["y"],
        vec![i64s("pads", &[0, -1, 0, 2]), f32s("lo", &[], &[0.0])],
    );
    let module = ok(&m, &[]);
    assert_eq!(ops(&module), ["Slice", "Pad", "Clip"]);
    assert_eq!(
        module.graph.tensors[module.graph.outputs[0]].shape,
        vec![1, 7]
    );
    match &module.graph.nodes[2].op {
        Op::Unary(u) => assert_eq!(
            u.op,
            UnaryOp::Clip {
                min: 0.0,
                max: f32::MAX
            }
        ),
        other => panic!("{other:?}"),
    }

    // Gemm keeps ONNX semantics; Dropout is an alias; dead nodes are pruned.
    let m = model(
        13,
        vec![
            node("Dropout", "d", &["x"], &["a"], vec![a_float("ratio", 0.5)]),
            node(
                "Gemm",
                "g",
                &["a", "w"],
                &["y"],
                vec![a_int("transB", 1), a_float("alpha", 2.0)],
            ),
            node("Relu", "dead", &["x"], &["unused"], vec![]),
        ],
        vec![f32_in("x", &[1, 2])],
        &["y"],
        vec![
            f32s("w", &[3, 2], &[0.0; 6]),
            f32s("unused_weight", &[1], &[1.0]),
        ],
    );
    let module = ok(&m, &[]);
    assert_eq!(ops(&module), ["Gemm"]);
    assert_eq!(module.graph.tensors.len(), 3);

    // Shape of a static tensor is a constant; ConstantOfShape and Range fold without kernels.
    let m = model(
        13,
        vec![
            node("Shape", "sh", &["x"], &["s"], vec![]),
            node("ConstantOfShape", "cs", &["s"], &["z"], vec![]),
            node("Add", "add", &["x", "z"], &["y"], vec![]),
        ],
        vec![f32_in("x", &[2, 3])],
        &["y"],
        vec![],
    );
    let module = ok(&m, &[]);
    assert_eq!(ops(&module), ["Add"]);
    assert!(module.is_const(module.graph.nodes[0].inputs[1]));

    // LSTM stays whole; sequence_lens equal to T is ignored; a ragged one is refused.
    let lstm = |lens: &[i64]| {
        model(
            13,
            vec![node(
                "LSTM",
                "l",
                &["x", "w", "r", "", "sl"],
                &["y", "yh"],
                vec![a_int("hidden_size", 1)],
            )],
            vec![f32_in("x", &[2, 2, 3])],
            &["y", "yh"],
            vec![
                f32s("w", &[1, 4, 3], &[0.0; 12]),
                f32s("r", &[1, 4, 1], &[0.0; 4]),
                TensorProto {
                    name: "sl".into(),
                    dims: vec![2],
                    data_type: DataType::Int32 as i32,
                    int32_data: lens.to_vec().iter().map(|&v| v as i32).collect(),
                    ..Default::default()
                },
            ],
        )
    };
    let module = ok(&lstm(&[2, 2]), &[]);
    assert_eq!(ops(&module), ["LSTM"]);
    assert!(err(&lstm(&[2, 1]), &[]).contains("sequence_lens"));

    // QuantizeLinear without zero point → u8; per-axis when the scale has several values.
    let m = model(
        13,
        vec![
            node("QuantizeLinear", "q", &["x", "s"], &["qx"], vec![]),
            node(
                "DequantizeLinear",
                "dq",
                &["qx", "s2", "zp"],
                &["y"],
                vec![a_int("axis", 1)],
            ),
        ],
        vec![f32_in("x", &[1, 2])],
        &["y"],
        vec![
            f32s("s", &[], &[0.5]),
            f32s("s2", &[2], &[0.5, 0.25]),
            TensorProto {
                name: "zp".into(),
                dims: vec![2],
                data_type: DataType::Uint8 as i32,
                raw_data: vec![0, 1],
                ..Default::default()
            },
        ],
    );
    let module = ok(&m, &[]);
    match (&module.graph.nodes[0].op, &module.graph.nodes[1].op) {
        (Op::QuantizeLinear(q), Op::DequantizeLinear(d)) => {
            assert_eq!(q.axis, None);
            assert_eq!(q.to, edgefuse_runtime::DType::U8);
            assert_eq!(d.axis, Some(1));
        }
        other => panic!("{other:?}"),
    }
}

/// A model with several unsupported ops names them all in one error, each with the nodes that
/// use it (three at most, then a count), rather than one per compile attempt.
#[test]
fn every_unsupported_op_is_named_at_once() {
    let mut custom = node("FusedGemm", "fg", &["x"], &["f"], vec![]);
    custom.domain = "com.microsoft".into();
    let nodes = vec![
        node("Relu", "ok", &["x"], &["r"], vec![]),
        node("Hardmax", "h0", &["r"], &["h0"], vec![]),
        custom,
        node("Hardmax", "h1", &["h0"], &["h1"], vec![]),
        node("Hardmax", "h2", &["h1"], &["h2"], vec![]),
        node("Hardmax", "h3", &["h2"], &["h3"], vec![]),
        node("Hardmax", "h4", &["h3"], &["y"], vec![]),
    ];
    let m = model(17, nodes, vec![f32_in("x", &[1, 4])], &["y"], vec![]);
    let e = err(&m, &[]);
    assert!(
        e.contains(
            r#"6 nodes use ops edgefuse does not support: op "Hardmax" (opset 17) at node #1 "h0", node #3 "h1", node #4 "h2" and 2 more; op "FusedGemm" of domain "com.microsoft" at node #2 "fg""#
        ),
        "{e}"
    );
}

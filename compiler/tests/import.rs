//! Importing the reference models: every model imports with its refs' input shapes into a valid
//! graph, recurrent layers stay whole, shape subgraphs fold away, and (where the CPU kernels
//! exist) the imported graph reproduces onnxruntime's outputs.

mod common;

use std::collections::BTreeSet;

use edgefuse_compiler::onnx::{import_onnx, validate_module};
use edgefuse_compiler::Module;
use edgefuse_runtime::ir::Op;

/// One case per reference model: its file stem and the op names allowed to remain after import
/// (None: not checked).
struct Case {
    model: &'static str,
    allowed_ops: Option<&'static [&'static str]>,
    lstm_nodes: usize,
}

const CASES: &[Case] = &[
    Case {
        model: "seed_cnn_mnist",
        allowed_ops: None,
        lstm_nodes: 0,
    },
    Case {
        model: "seed_cnn_fashion",
        allowed_ops: None,
        lstm_nodes: 0,
    },
    Case {
        model: "seed_lstm_textgen",
        allowed_ops: None,
        lstm_nodes: 1,
    },
    Case {
        model: "efficientnet_lite0",
        allowed_ops: Some(&[
            "Pad",
            "Conv",
            "Clip",
            "Add",
            "GlobalAveragePool",
            "Reshape",
            "Gemm",
        ]),
        lstm_nodes: 0,
    },
    Case {
        model: "mobilenet_v2_int8_qdq",
        allowed_ops: None,
        lstm_nodes: 0,
    },
    Case {
        model: "silero_vad_16k_sequence",
        allowed_ops: None,
        lstm_nodes: 1,
    },
    Case {
        model: "ddddocr_crnn",
        allowed_ops: None,
        lstm_nodes: 1,
    },
];

fn import_case(models: &std::path::Path, case: &Case) -> anyhow::Result<(Module, common::Refs)> {
    let refs = common::read_refs(models, case.model);
    let shapes: Vec<(String, Vec<usize>)> = refs
        .inputs
        .iter()
        .map(|i| (i.name.clone(), i.shape.clone()))
        .collect();
    let m = import_onnx(&models.join(format!("{}.onnx", case.model)), &shapes)?;
    Ok((m, refs))
}

#[test]
fn reference_models_import() {
    let Some(models) = common::models_dir() else {
        return;
    };
    let mut failures = Vec::new();
    for case in CASES {
        let (m, refs) = match import_case(&models, case) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: {e:#}", case.model));
                continue;
            }
        };
        let g = &m.graph;
        if let Err(e) = validate_module(&m) {
            failures.push(format!("{}: invalid graph: {e:#}", case.model));
        }
        let ops: BTreeSet<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
        eprintln!("{}: {} nodes, ops {ops:?}", case.model, g.nodes.len());
        let lstms = g
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Lstm(_)))
            .count();
        if lstms != case.lstm_nodes {
            failures.push(format!(
                "{}: {lstms} LSTM nodes, expected {}",
                case.model, case.lstm_nodes
            ));
        }
        if let Some(allowed) = case.allowed_ops {
            let extra: Vec<_> = ops.iter().filter(|o| !allowed.contains(o)).collect();
            if !extra.is_empty() {
                failures.push(format!("{}: ops {extra:?} left after import", case.model));
            }
        }
        // Inputs and outputs in ONNX order, with their names and the refs' shapes.
        for (io, &id) in refs.inputs.iter().zip(&g.inputs) {
            assert_eq!(g.tensors[id].name, io.name, "{}", case.model);
            assert_eq!(g.tensors[id].shape, io.shape, "{}", case.model);
        }
        assert_eq!(g.outputs.len(), refs.outputs.len(), "{}", case.model);
        for (io, &id) in refs.outputs.iter().zip(&g.outputs) {
            let t = &g.tensors[id];
            if t.name != io.name || t.shape != io.shape {
                failures.push(format!(
                    "{}: output {:?} {:?}, refs say {:?} {:?}",
                    case.model, t.name, t.shape, io.name, io.shape
                ));
            }
            assert!(
                g.nodes.iter().any(|n| n.outputs.contains(&id)),
                "output computed by a node"
            );
        }
        // Nothing dead is left.
        let used: BTreeSet<usize> = g
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter().copied())
            .collect();
        for (id, c) in m.consts.iter().enumerate() {
            if c.is_some() {
                assert!(
                    used.contains(&id),
                    "{}: constant {id} is unused",
                    case.model
                );
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn reference_models_match_onnxruntime() {
    let Some(models) = common::models_dir() else {
        return;
    };
    let mut failures = Vec::new();
    for case in CASES {
        let (m, refs) = match import_case(&models, case) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: import: {e:#}", case.model));
                continue;
            }
        };
        let inputs: Vec<_> = refs
            .inputs
            .iter()
            .map(|i| common::read_npy(&i.file))
            .collect();
        for (t, io) in inputs.iter().zip(&refs.inputs) {
            assert_eq!(t.dtype, common::dtype_of(&io.dtype));
        }
        let outs = match common::run(&m, &inputs) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{}: run: {e}", case.model));
                continue;
            }
        };
        for (got, io) in outs.iter().zip(&refs.outputs) {
            let want = common::read_npy(&io.file);
            let (diff, tol) = common::compare(got, &want);
            eprintln!(
                "{} {}: max diff {diff:e} (tolerance {tol:e})",
                case.model, io.name
            );
            if diff > tol {
                failures.push(format!(
                    "{} {}: max diff {diff:e} > {tol:e}",
                    case.model, io.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn unsupported_op_names_node_op_and_opset() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/unsupported_op.onnx");
    let err = import_onnx(&path, &[]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(
            r#"node #1 "mystery_1": op "Hardmax" (opset 13) is not supported by edgefuse"#
        ),
        "{msg}"
    );
}

/// The residual Adds of ddddocr (8) and EfficientNet-Lite0 (9) fold into the Convs that produce
/// them, no float Add is left, and the rewritten graph still reproduces onnxruntime's outputs.
#[test]
fn residual_adds_fold_into_their_convs() {
    let Some(models) = common::models_dir() else {
        return;
    };
    for (model, adds) in [("ddddocr_crnn", 8), ("efficientnet_lite0", 9)] {
        let case = CASES.iter().find(|c| c.model == model).unwrap();
        let (mut m, refs) = import_case(&models, case).unwrap();
        let fired =
            edgefuse_compiler::passes::optimize(&mut m, &edgefuse_compiler::passes::rules())
                .unwrap();
        let n = fired
            .iter()
            .find(|(r, _)| r == "fold_residual_add_into_conv")
            .map_or(0, |(_, n)| *n);
        assert_eq!(n, adds, "{model}: {fired:?}");
        assert!(
            !m.graph.nodes.iter().any(|n| n.op.name() == "Add"),
            "{model}: an Add is left"
        );
        let residual_convs = m
            .graph
            .nodes
            .iter()
            .filter(|n| matches!(&n.op, Op::Conv(c) if c.residual))
            .count();
        assert_eq!(residual_convs, adds, "{model}");
        let inputs: Vec<_> = refs
            .inputs
            .iter()
            .map(|i| common::read_npy(&i.file))
            .collect();
        let outs = common::run(&m, &inputs).unwrap();
        for (got, io) in outs.iter().zip(&refs.outputs) {
            let (diff, tol) = common::compare(got, &common::read_npy(&io.file));
            assert!(
                diff <= tol,
                "{model} {}: max diff {diff:e} > {tol:e}",
                io.name
            );
        }
    }
}

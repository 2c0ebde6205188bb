//! Malformed ONNX graphs through the whole pipeline — import, rewrite rules, `.efm` writer, loader,
//! CPU plan and one run — each inside `catch_unwind`: a graph that is wrong must be refused with
//! one error naming the node and what is wrong; one that is valid must run. Nothing may panic,
//! hang or allocate absurdly. Also the reference models with one attribute or initializer
//! dimension changed at a time.

mod common;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::proto::*;
use edgefuse_compiler::onnx::import_proto;
use edgefuse_compiler::quant::{Batch, Method, QuantOptions};
use edgefuse_compiler::{compile_module, CompileOptions, Precision};
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{DType, Model, Tensor};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::*;
use tract_onnx::prelude::Framework;

/// Import → passes → `.efm` bytes, as `edgefuse compile` runs them (fp32).
fn compile(m: &ModelProto) -> Result<Vec<u8>, String> {
    let module = import_proto(m, &[]).map_err(|e| format!("{e:#}"))?;
    let opts = CompileOptions::default();
    let (bytes, _) =
        compile_module(module, "hostile.onnx", &[], &opts).map_err(|e| format!("{e:#}"))?;
    Ok(bytes)
}

/// Load → plan → run on deterministic inputs (`feed` overrides them).
fn load_and_run(bytes: &[u8], feed: &[Tensor]) -> Result<(), String> {
    let model = Model::from_bytes(bytes).map_err(|e| format!("load: {e}"))?;
    let mut s = Session::new(model.clone(), SessionOptions::with_threads(1))
        .map_err(|e| format!("session: {e}"))?;
    let g = model.graph();
    let inputs: Vec<Tensor> = g
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &id)| match feed.get(k) {
            Some(t) => t.clone(),
            None => {
                let t = &g.tensors[id];
                let mut v = Tensor::zeros(t.dtype, &t.shape);
                if t.dtype == DType::F32 {
                    for (i, x) in v.as_slice_mut::<f32>().unwrap().iter_mut().enumerate() {
                        *x = (i % 7) as f32 * 0.25 - 0.5;
                    }
                }
                v
            }
        })
        .collect();
    s.run_tensors(&inputs).map_err(|e| format!("run: {e}"))?;
    Ok(())
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The pipeline's result, or `Err("PANIC: ..")` when it panicked. `ran` holds the files run
/// already: a file compiled again (a mutation that changed nothing that matters) is not rerun.
fn outcome_once(
    m: &ModelProto,
    feed: &[Tensor],
    ran: &mut HashSet<Vec<u8>>,
) -> Result<Result<(), String>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let bytes = compile(m)?;
        if ran.contains(&bytes) {
            return Ok(());
        }
        load_and_run(&bytes, feed)?;
        ran.insert(bytes);
        Ok(())
    }))
    .map_err(|p| format!("PANIC: {}", panic_message(&*p)))
}

fn outcome(m: &ModelProto, feed: &[Tensor]) -> Result<Result<(), String>, String> {
    outcome_once(m, feed, &mut HashSet::new())
}

/// What a case must give.
enum Want {
    /// Refused, the message containing every one of these.
    Refused(&'static [&'static str]),
    /// Valid: compiles and runs.
    Runs,
}

struct Case {
    name: &'static str,
    model: ModelProto,
    feed: Vec<Tensor>,
    want: Want,
}

fn refused(name: &'static str, model: ModelProto, needles: &'static [&'static str]) -> Case {
    Case {
        name,
        model,
        feed: vec![],
        want: Want::Refused(needles),
    }
}

fn runs(name: &'static str, model: ModelProto) -> Case {
    Case {
        name,
        model,
        feed: vec![],
        want: Want::Runs,
    }
}

/// Runs every case; returns one line per case that panicked or gave the wrong outcome.
fn failures(cases: Vec<Case>) -> Vec<String> {
    let mut bad = Vec::new();
    for c in cases {
        match (outcome(&c.model, &c.feed), &c.want) {
            (Err(p), _) => bad.push(format!("{}: {p}", c.name)),
            (Ok(Ok(())), Want::Runs) => {}
            (Ok(Ok(())), Want::Refused(_)) => bad.push(format!("{}: accepted", c.name)),
            (Ok(Err(e)), Want::Runs) => bad.push(format!("{}: refused: {e}", c.name)),
            (Ok(Err(e)), Want::Refused(needles)) => {
                if let Some(n) = needles.iter().find(|n| !e.contains(*n)) {
                    bad.push(format!("{}: error lacks \"{n}\": {e}", c.name));
                }
            }
        }
    }
    bad
}

fn assert_none(bad: Vec<String>) {
    assert!(bad.is_empty(), "{} case(s):\n{}", bad.len(), bad.join("\n"));
}

/// One node `op` named "n" over `x` (f32, `shape`) and the given initializers, output "y".
fn one(
    op: &str,
    shape: &[i64],
    inputs: &[&str],
    attrs: Vec<AttributeProto>,
    inits: Vec<TensorProto>,
) -> ModelProto {
    model(
        13,
        vec![node(op, "n", inputs, &["y"], attrs)],
        vec![f32_in("x", shape)],
        &["y"],
        inits,
    )
}

/// `op` named "n" over an empty slice (`axis` cut to length 0) of `x` (f32, `shape`).
fn on_empty(
    op: &str,
    shape: &[i64],
    axis: i64,
    attrs: Vec<AttributeProto>,
    mut inits: Vec<TensorProto>,
) -> ModelProto {
    let mut inputs = vec!["e"];
    inputs.extend(inits.iter().filter(|t| t.name == "w").map(|_| "w"));
    inits.extend([i64s("zero", &[0]), i64s("axis", &[axis])]);
    model(
        13,
        vec![
            node("Slice", "s", &["x", "zero", "zero", "axis"], &["e"], vec![]),
            node(op, "n", &inputs, &["y"], attrs),
        ],
        vec![f32_in("x", shape)],
        &["y"],
        inits,
    )
}

fn i32s(name: &str, v: &[i32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DataType::Int32 as i32,
        int32_data: v.to_vec(),
        ..Default::default()
    }
}

fn u8s(name: &str, dims: &[i64], v: &[u8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Uint8 as i32,
        raw_data: v.to_vec(),
        ..Default::default()
    }
}

const BIG: i64 = 1 << 40;

#[rustfmt::skip]
fn conv_cases() -> Vec<Case> {
    let w = || vec![f32s("w", &[2, 2, 3, 3], &[0.1; 36])];
    let conv = |attrs: Vec<AttributeProto>| one("Conv", &[1, 2, 5, 5], &["x", "w"], attrs, w());
    vec![
        refused("conv stride 0", conv(vec![a_ints("strides", &[0, 1])]), &["\"n\" Conv", "stride"]),
        refused("conv stride negative", conv(vec![a_ints("strides", &[-1, 1])]), &["\"n\" Conv", "strides"]),
        runs("conv stride huge", conv(vec![a_ints("strides", &[BIG, 1])])),
        refused("conv dilation huge", conv(vec![a_ints("dilations", &[BIG, 1])]), &["\"n\" Conv"]),
        refused("conv dilation max", conv(vec![a_ints("dilations", &[i64::MAX, 1])]), &["\"n\" Conv"]),
        refused("conv dilation max same", conv(vec![a_ints("dilations", &[i64::MAX, 1]), a_str("auto_pad", "SAME_UPPER")]), &["\"n\" Conv"]),
        refused("conv stride max same", conv(vec![a_ints("strides", &[i64::MAX, 1]), a_str("auto_pad", "SAME_LOWER")]), &["\"n\" Conv", "stride"]),
        refused("conv kernel 0", conv(vec![a_ints("kernel_shape", &[0, 3])]), &["\"n\" Conv"]),
        refused("conv kernel mismatch", conv(vec![a_ints("kernel_shape", &[2, 2])]), &["\"n\" Conv"]),
        refused("conv kernel huge", conv(vec![a_ints("kernel_shape", &[BIG, 3])]), &["\"n\" Conv"]),
        refused("conv pads huge", conv(vec![a_ints("pads", &[i64::MAX, 0, i64::MAX, 0])]), &["\"n\" Conv"]),
        refused("conv pads big", conv(vec![a_ints("pads", &[BIG, BIG, BIG, BIG])]), &["\"n\" Conv"]),
        runs("conv pads bigger than input", conv(vec![a_ints("pads", &[6, 6, 6, 6])])),
        refused("conv pads short", conv(vec![a_ints("pads", &[1, 1])]), &["\"n\" Conv", "pads"]),
        refused("conv group 0", conv(vec![a_int("group", 0)]), &["\"n\" Conv"]),
        refused("conv group 3", conv(vec![a_int("group", 3)]), &["\"n\" Conv"]),
        refused("conv group huge", conv(vec![a_int("group", i64::MAX)]), &["\"n\" Conv"]),
        refused("conv auto_pad odd", conv(vec![a_str("auto_pad", "SAME")]), &["\"n\" Conv", "auto_pad"]),
        refused("conv weight rank 5", one("Conv", &[1, 2, 5, 5], &["x", "w"], vec![], vec![f32s("w", &[1, 2, 1, 1, 1], &[0.0; 2])]), &["\"n\" Conv"]),
        runs("conv weight zero channels", one("Conv", &[1, 2, 5, 5], &["x", "w"], vec![], vec![f32s("w", &[0, 2, 3, 3], &[])])),
        refused("conv bias wrong", one("Conv", &[1, 2, 5, 5], &["x", "w", "b"], vec![], vec![f32s("w", &[2, 2, 3, 3], &[0.1; 36]), f32s("b", &[3], &[0.0; 3])]), &["\"n\" Conv", "bias"]),
        refused("conv int weight", one("Conv", &[1, 2, 5, 5], &["x", "w"], vec![], vec![i64s("w", &[1])]), &["\"n\" Conv"]),
        refused("conv 1-d input", one("Conv", &[2, 5], &["x", "w"], vec![], w()), &["\"n\" Conv"]),
        refused("conv zero spatial", one("Conv", &[1, 2, 0, 5], &["x", "w"], vec![], w()), &["\"x\" dimension 2"]),
        refused("conv empty input", on_empty("Conv", &[1, 2, 5, 5], 2, vec![], w()), &["\"n\" Conv"]),
        runs("conv zero batch", one("Conv", &[1, 2, 5, 5], &["x", "w"], vec![a_ints("pads", &[1, 1, 1, 1]), a_ints("dilations", &[2, 2])], w())),
    ]
}

#[rustfmt::skip]
fn conv_transpose_cases() -> Vec<Case> {
    let w = || vec![f32s("w", &[2, 2, 3, 3], &[0.1; 36])];
    let ct =
        |attrs: Vec<AttributeProto>| one("ConvTranspose", &[1, 2, 4, 4], &["x", "w"], attrs, w());
    vec![
        runs("convT plain", ct(vec![a_ints("strides", &[2, 2])])),
        refused("convT stride 0", ct(vec![a_ints("strides", &[0, 1])]), &["\"n\" ConvTranspose"]),
        refused("convT stride huge", ct(vec![a_ints("strides", &[i64::MAX, 1])]), &["\"n\" ConvTranspose"]),
        refused("convT stride huge same", ct(vec![a_ints("strides", &[i64::MAX, 1]), a_str("auto_pad", "SAME_UPPER")]), &["\"n\" ConvTranspose"]),
        refused("convT dilation huge", ct(vec![a_ints("dilations", &[i64::MAX, 1])]), &["\"n\" ConvTranspose"]),
        refused("convT output_padding huge", ct(vec![a_ints("output_padding", &[i64::MAX, 0])]), &["\"n\" ConvTranspose"]),
        refused("convT output_shape huge", ct(vec![a_ints("output_shape", &[BIG, 4])]), &["\"n\" ConvTranspose"]),
        refused("convT pads remove all", ct(vec![a_ints("pads", &[5, 5, 5, 5])]), &["\"n\" ConvTranspose"]),
        refused("convT pads huge", ct(vec![a_ints("pads", &[i64::MAX, 0, i64::MAX, 0])]), &["\"n\" ConvTranspose"]),
        refused("convT group 0", ct(vec![a_int("group", 0)]), &["\"n\" ConvTranspose"]),
        refused("convT group 3", ct(vec![a_int("group", 3)]), &["\"n\" ConvTranspose"]),
        refused("convT group huge", ct(vec![a_int("group", i64::MAX)]), &["\"n\" ConvTranspose"]),
        refused("convT empty input", on_empty("ConvTranspose", &[1, 2, 4, 4], 3, vec![], w()), &["\"n\" ConvTranspose"]),
        refused("convT weight channels", one("ConvTranspose", &[1, 3, 4, 4], &["x", "w"], vec![], w()), &["\"n\" ConvTranspose"]),
    ]
}

#[rustfmt::skip]
fn pool_cases() -> Vec<Case> {
    let pool = |op: &str, attrs: Vec<AttributeProto>| one(op, &[1, 2, 5, 5], &["x"], attrs, vec![]);
    let k = || a_ints("kernel_shape", &[2, 2]);
    vec![
        refused("maxpool no kernel", pool("MaxPool", vec![]), &["\"n\" MaxPool", "kernel_shape"]),
        refused("maxpool kernel huge", pool("MaxPool", vec![a_ints("kernel_shape", &[BIG, 2])]), &["\"n\" MaxPool"]),
        refused("maxpool kernel max", pool("MaxPool", vec![a_ints("kernel_shape", &[i64::MAX, 2])]), &["\"n\" MaxPool"]),
        refused("maxpool kernel negative", pool("MaxPool", vec![a_ints("kernel_shape", &[-2, 2])]), &["\"n\" MaxPool"]),
        refused("maxpool kernel too big", pool("MaxPool", vec![a_ints("kernel_shape", &[9, 2])]), &["\"n\" MaxPool"]),
        refused("maxpool stride 0", pool("MaxPool", vec![k(), a_ints("strides", &[0, 1])]), &["\"n\" MaxPool"]),
        runs("maxpool stride huge ceil", pool("MaxPool", vec![k(), a_ints("strides", &[BIG, 1]), a_int("ceil_mode", 1)])),
        refused("maxpool stride max ceil", pool("MaxPool", vec![k(), a_ints("strides", &[i64::MAX, 1]), a_int("ceil_mode", 1)]), &["\"n\" MaxPool", "stride"]),
        refused("maxpool empty input", on_empty("MaxPool", &[1, 2, 5, 5], 2, vec![k()], vec![]), &["\"n\" MaxPool"]),
        runs("maxpool pads beyond kernel", pool("MaxPool", vec![k(), a_ints("pads", &[3, 3, 3, 3])])),
        refused("avgpool pads huge", pool("AveragePool", vec![k(), a_ints("pads", &[i64::MAX, 0, 0, 0])]), &["\"n\" AveragePool"]),
        refused("maxpool dilation huge", pool("MaxPool", vec![k(), a_ints("dilations", &[i64::MAX, 1])]), &["\"n\" MaxPool"]),
        runs("avgpool pads count", pool("AveragePool", vec![k(), a_ints("pads", &[1, 1, 1, 1]), a_int("count_include_pad", 1), a_int("ceil_mode", 1)])),
        refused("maxpool indices", model(13, vec![node("MaxPool", "n", &["x"], &["y", "i"], vec![k()])], vec![f32_in("x", &[1, 2, 5, 5])], &["y", "i"], vec![]), &["\"n\" MaxPool", "Indices"]),
        refused("maxpool rank 2", one("MaxPool", &[2, 5], &["x"], vec![a_ints("kernel_shape", &[])], vec![]), &["\"n\" MaxPool"]),
        refused("globalpool rank 2", one("GlobalAveragePool", &[2, 5], &["x"], vec![], vec![]), &["\"n\" GlobalAveragePool"]),
        refused("batchnorm param shapes", one("BatchNormalization", &[1, 2, 3], &["x", "s", "b", "m", "v"], vec![], vec![f32s("s", &[3], &[1.0; 3]), f32s("b", &[2], &[0.0; 2]), f32s("m", &[2], &[0.0; 2]), f32s("v", &[2], &[1.0; 2])]), &["\"n\" BatchNormalization"]),
        refused("batchnorm rank 1", one("BatchNormalization", &[2], &["x", "s", "b", "m", "v"], vec![], vec![f32s("s", &[2], &[1.0; 2]), f32s("b", &[2], &[0.0; 2]), f32s("m", &[2], &[0.0; 2]), f32s("v", &[2], &[1.0; 2])]), &["\"n\" BatchNormalization"]),
        refused("batchnorm nan epsilon", one("BatchNormalization", &[1, 2, 3], &["x", "s", "b", "m", "v"], vec![a_float("epsilon", f32::NAN)], vec![f32s("s", &[2], &[1.0; 2]), f32s("b", &[2], &[0.0; 2]), f32s("m", &[2], &[0.0; 2]), f32s("v", &[2], &[-1.0; 2])]), &["\"n\" BatchNormalization", "NaN or infinite"]),
        runs("batchnorm negative var", one("BatchNormalization", &[1, 2, 3], &["x", "s", "b", "m", "v"], vec![], vec![f32s("s", &[2], &[1.0; 2]), f32s("b", &[2], &[0.0; 2]), f32s("m", &[2], &[0.0; 2]), f32s("v", &[2], &[-1.0; 2])])),
    ]
}

#[rustfmt::skip]
fn shape_cases() -> Vec<Case> {
    let reshape = |t: &[i64]| {
        one(
            "Reshape",
            &[2, 3, 4],
            &["x", "s"],
            vec![],
            vec![i64s("s", t)],
        )
    };
    vec![
        refused("reshape two -1", reshape(&[-1, -1]), &["\"n\" Reshape", "-1"]),
        refused("reshape -2", reshape(&[-2, 12]), &["\"n\" Reshape"]),
        refused("reshape count", reshape(&[5, 5]), &["\"n\" Reshape"]),
        refused("reshape 0 past rank", reshape(&[1, 1, 1, 0]), &["\"n\" Reshape"]),
        refused("reshape -1 with 0 allowzero", one("Reshape", &[2, 3, 4], &["x", "s"], vec![a_int("allowzero", 1)], vec![i64s("s", &[0, -1])]), &["\"n\" Reshape"]),
        refused("reshape product overflow", reshape(&[-1, BIG, BIG]), &["\"n\" Reshape"]),
        refused("reshape product overflow 2", reshape(&[BIG, BIG, 1 << 30]), &["\"n\" Reshape"]),
        refused("reshape f32 shape", one("Reshape", &[2, 3, 4], &["x", "s"], vec![], vec![f32s("s", &[2], &[4.0, 6.0])]), &["\"n\" Reshape"]),
        runs("reshape 0 and -1", model(13, vec![node("Relu", "r", &["x"], &["a"], vec![]), node("Reshape", "n", &["a", "s"], &["y"], vec![])], vec![f32_in("x", &[2, 3, 4])], &["y"], vec![i64s("s", &[0, -1])])),
        refused("flatten axis", one("Flatten", &[2, 3], &["x"], vec![a_int("axis", 3)], vec![]), &["\"n\" Flatten"]),
        refused("squeeze not 1", one("Squeeze", &[2, 3], &["x", "a"], vec![], vec![i64s("a", &[0])]), &["\"n\" Squeeze"]),
        refused("squeeze axis range", one("Squeeze", &[2, 3], &["x", "a"], vec![], vec![i64s("a", &[7])]), &["\"n\" Squeeze"]),
        refused("unsqueeze repeated", one("Unsqueeze", &[2, 3], &["x", "a"], vec![], vec![i64s("a", &[0, 0])]), &["\"n\" Unsqueeze"]),
        refused("unsqueeze range", one("Unsqueeze", &[2, 3], &["x", "a"], vec![], vec![i64s("a", &[9])]), &["\"n\" Unsqueeze"]),
        refused("unsqueeze huge count", one("Unsqueeze", &[2, 3], &["x", "a"], vec![], vec![TensorProto {name: "a".into(), dims: vec![1 << 25], data_type: DataType::Int64 as i32, raw_data: vec![0; 8 << 25], ..Default::default()}]), &["\"n\" Unsqueeze"]),
        refused("transpose not perm", one("Transpose", &[2, 3], &["x"], vec![a_ints("perm", &[0, 0])], vec![]), &["\"n\" Transpose", "perm"]),
        refused("transpose perm range", one("Transpose", &[2, 3], &["x"], vec![a_ints("perm", &[0, 5])], vec![]), &["\"n\" Transpose", "perm"]),
        refused("transpose perm short", one("Transpose", &[2, 3], &["x"], vec![a_ints("perm", &[0])], vec![]), &["\"n\" Transpose", "perm"]),
        refused("transpose perm negative", one("Transpose", &[2, 3], &["x"], vec![a_ints("perm", &[-1, 0])], vec![]), &["\"n\" Transpose", "perm"]),
        refused("concat ranks", one("Concat", &[2, 3], &["x", "c"], vec![a_int("axis", 0)], vec![f32s("c", &[3], &[0.0; 3])]), &["\"n\" Concat"]),
        refused("concat dims", one("Concat", &[2, 3], &["x", "c"], vec![a_int("axis", 0)], vec![f32s("c", &[1, 4], &[0.0; 4])]), &["\"n\" Concat"]),
        refused("concat dtypes", one("Concat", &[2, 3], &["x", "c"], vec![a_int("axis", 0)], vec![TensorProto {name: "c".into(), dims: vec![1, 3], data_type: DataType::Int64 as i32, int64_data: vec![1, 2, 3], ..Default::default()}]), &["\"n\" Concat"]),
        refused("concat axis", one("Concat", &[2, 3], &["x", "x"], vec![a_int("axis", 2)], vec![]), &["\"n\" Concat", "axis"]),
        refused("concat no axis", one("Concat", &[2, 3], &["x", "x"], vec![], vec![]), &["\"n\" Concat", "axis"]),
        refused("concat scalars", one("Concat", &[], &["x", "x"], vec![a_int("axis", 0)], vec![]), &["\"n\" Concat"]),
        refused("gather const index range", one("Gather", &[2, 3], &["x", "i"], vec![], vec![i64s("i", &[5])]), &["\"n\" Gather"]),
        refused("gather const index negative", one("Gather", &[2, 3], &["x", "i"], vec![], vec![i64s("i", &[-3])]), &["\"n\" Gather"]),
        refused("gather const on const range", one("Gather", &[2, 3], &["c", "i"], vec![], vec![f32s("c", &[2], &[1.0, 2.0]), i64s("i", &[i64::MIN])]), &["\"n\" Gather"]),
        refused("gather float index", one("Gather", &[2, 3], &["x", "i"], vec![], vec![f32s("i", &[1], &[0.0])]), &["\"n\" Gather"]),
        refused("gather axis", one("Gather", &[2, 3], &["x", "i"], vec![a_int("axis", 2)], vec![i64s("i", &[0])]), &["\"n\" Gather", "axis"]),
        refused("gather scalar data", one("Gather", &[], &["x", "i"], vec![], vec![i64s("i", &[0])]), &["\"n\" Gather"]),
        refused("cast to string", one("Cast", &[2], &["x"], vec![a_int("to", DataType::String as i64)], vec![]), &["\"n\" Cast"]),
        refused("cast to huge", one("Cast", &[2], &["x"], vec![a_int("to", i64::MAX)], vec![]), &["\"n\" Cast"]),
        runs("cast to bool", one("Cast", &[2], &["x"], vec![a_int("to", DataType::Bool as i64)], vec![])),
        runs("cast to f16", one("Cast", &[2], &["x"], vec![a_int("to", DataType::Float16 as i64)], vec![])),
        runs("cast to i8", one("Cast", &[2], &["x"], vec![a_int("to", DataType::Int8 as i64)], vec![])),
        refused("expand incompatible", one("Expand", &[2, 3], &["x", "s"], vec![], vec![i64s("s", &[4, 3])]), &["\"n\" Expand"]),
        refused("expand negative", one("Expand", &[2, 3], &["x", "s"], vec![], vec![i64s("s", &[-1, 3])]), &["\"n\" Expand"]),
        refused("expand huge", one("Expand", &[2, 3], &["x", "s"], vec![], vec![i64s("s", &[BIG, BIG, 1, 3])]), &["\"n\" Expand"]),
        refused("expand const huge", one("Expand", &[2, 3], &["c", "s"], vec![], vec![f32s("c", &[1], &[1.0]), i64s("s", &[1 << 20, 1 << 20])]), &["\"n\" Expand"]),
        refused("split sizes sum", one("Split", &[6, 2], &["x", "s"], vec![], vec![i64s("s", &[2, 2])]), &["\"n\" Split"]),
        refused("split sizes overflow", model(13, vec![node("Split", "n", &["x", "s"], &["a", "b", "c"], vec![])], vec![f32_in("x", &[6])], &["a", "b", "c"], vec![i64s("s", &[i64::MAX, i64::MAX, 4])]), &["\"n\" Split"]),
        refused("split sizes negative", model(13, vec![node("Split", "n", &["x", "s"], &["a", "b"], vec![])], vec![f32_in("x", &[6])], &["a", "b"], vec![i64s("s", &[8, -2])]), &["\"n\" Split"]),
        refused("split num_outputs huge", model(18, vec![node("Split", "n", &["x"], &["a", "b"], vec![a_int("num_outputs", BIG)])], vec![f32_in("x", &[6])], &["a", "b"], vec![]), &["\"n\" Split"]),
        refused("split axis", one("Split", &[6], &["x"], vec![a_int("axis", 1)], vec![]), &["\"n\" Split"]),
        refused("split scalar", one("Split", &[], &["x"], vec![], vec![]), &["\"n\" Split"]),
        runs("split uneven 18", model(18, vec![node("Split", "n", &["x"], &["a", "b", "c"], vec![a_int("num_outputs", 3)])], vec![f32_in("x", &[7])], &["a", "b", "c"], vec![])),
        runs("split more than dim 18", model(18, vec![node("Split", "n", &["x"], &["a", "b", "c"], vec![a_int("num_outputs", 3)])], vec![f32_in("x", &[1])], &["a", "b", "c"], vec![])),
        refused("slice step 0", one("Slice", &[4, 4], &["x", "s", "e", "a", "st"], vec![], vec![i64s("s", &[0]), i64s("e", &[4]), i64s("a", &[0]), i64s("st", &[0])]), &["\"n\" Slice", "step"]),
        runs("slice huge bounds", one("Slice", &[4, 4], &["x", "s", "e", "a", "st"], vec![], vec![i64s("s", &[i64::MIN]), i64s("e", &[i64::MAX]), i64s("a", &[1]), i64s("st", &[i64::MAX])])),
        runs("slice huge negative step", one("Slice", &[4, 4], &["x", "s", "e", "a", "st"], vec![], vec![i64s("s", &[i64::MAX]), i64s("e", &[i64::MIN]), i64s("a", &[1]), i64s("st", &[i64::MIN])])),
        runs("slice empty", one("Slice", &[4, 4], &["x", "s", "e"], vec![], vec![i64s("s", &[3]), i64s("e", &[1])])),
        refused("slice axis twice", one("Slice", &[4, 4], &["x", "s", "e", "a"], vec![], vec![i64s("s", &[0, 0]), i64s("e", &[1, 1]), i64s("a", &[0, -2])]), &["\"n\" Slice"]),
        refused("slice lengths differ", one("Slice", &[4, 4], &["x", "s", "e"], vec![], vec![i64s("s", &[0, 0]), i64s("e", &[1])]), &["\"n\" Slice"]),
        refused("slice axis range", one("Slice", &[4, 4], &["x", "s", "e", "a"], vec![], vec![i64s("s", &[0]), i64s("e", &[1]), i64s("a", &[2])]), &["\"n\" Slice"]),
        runs("pad negative", one("Pad", &[4, 4], &["x", "p"], vec![], vec![i64s("p", &[-1, -2, -1, 3])])),
        runs("pad negative beyond", one("Pad", &[4, 4], &["x", "p"], vec![], vec![i64s("p", &[-9, 0, -9, 0])])),
        refused("pad huge", one("Pad", &[4, 4], &["x", "p"], vec![], vec![i64s("p", &[i64::MAX, 0, 0, 0])]), &["\"n\" Pad"]),
        refused("pad big", one("Pad", &[4, 4], &["x", "p"], vec![], vec![i64s("p", &[BIG, BIG, BIG, BIG])]), &["\"n\" Pad"]),
        runs("pad negative huge", one("Pad", &[4, 4], &["x", "p"], vec![], vec![i64s("p", &[i64::MIN, 0, i64::MIN, 0])])),
        refused("pad count", one("Pad", &[4, 4], &["x", "p"], vec![], vec![i64s("p", &[1, 1])]), &["\"n\" Pad", "pads"]),
        refused("pad reflect too far", one("Pad", &[4, 4], &["x", "p"], vec![a_str("mode", "reflect")], vec![i64s("p", &[4, 0, 0, 0])]), &["\"n\" Pad"]),
        runs("pad edge", one("Pad", &[4, 4], &["x", "p"], vec![a_str("mode", "edge")], vec![i64s("p", &[4, 0, 0, 5])])),
        refused("pad wrap", one("Pad", &[4, 4], &["x", "p"], vec![a_str("mode", "wrap")], vec![i64s("p", &[1, 0, 0, 0])]), &["\"n\" Pad", "wrap"]),
        refused("pad value vector", one("Pad", &[4, 4], &["x", "p", "v"], vec![], vec![i64s("p", &[1, 0, 0, 0]), f32s("v", &[2], &[1.0, 2.0])]), &["\"n\" Pad"]),
        refused("pad axes range", one("Pad", &[4, 4], &["x", "p", "", "a"], vec![], vec![i64s("p", &[1, 1]), i64s("a", &[3])]), &["\"n\" Pad"]),
        refused("pad axes twice", model(18, vec![node("Pad", "n", &["x", "p", "", "a"], &["y"], vec![])], vec![f32_in("x", &[4, 4])], &["y"], vec![i64s("p", &[1, -1, 1, -1]), i64s("a", &[0, 0])]), &["\"n\" Pad"]),
    ]
}

#[rustfmt::skip]
fn resize_cases() -> Vec<Case> {
    let rz = |sc: &[f32], attrs: Vec<AttributeProto>| {
        one(
            "Resize",
            &[1, 1, 2, 2],
            &["x", "", "sc"],
            attrs,
            vec![f32s("sc", &[sc.len() as i64], sc)],
        )
    };
    let rs = |sz: &[i64]| {
        one(
            "Resize",
            &[1, 1, 2, 2],
            &["x", "", "", "sz"],
            vec![],
            vec![i64s("sz", sz)],
        )
    };
    vec![
        refused("resize scale 0", rz(&[1.0, 1.0, 0.0, 2.0], vec![]), &["\"n\" Resize", "scale"]),
        refused("resize scale negative", rz(&[1.0, 1.0, -2.0, 2.0], vec![]), &["\"n\" Resize", "scale"]),
        refused("resize scale nan", rz(&[1.0, 1.0, f32::NAN, 2.0], vec![]), &["\"n\" Resize", "scale"]),
        refused("resize scale inf", rz(&[1.0, 1.0, f32::INFINITY, 2.0], vec![]), &["\"n\" Resize", "scale"]),
        refused("resize scale huge", rz(&[1.0, 1.0, 1e9, 1e9], vec![]), &["\"n\" Resize"]),
        runs("resize scale small", rz(&[1.0, 1.0, 0.1, 1.0], vec![])),
        refused("resize scales rank", rz(&[2.0, 2.0], vec![]), &["\"n\" Resize", "rank"]),
        refused("resize sizes huge", rs(&[1, 1, BIG, BIG]), &["\"n\" Resize"]),
        refused("resize sizes negative", rs(&[1, 1, -4, 4]), &["\"n\" Resize"]),
        runs("resize sizes zero", rs(&[1, 1, 0, 4])),
        runs("resize sizes down", rs(&[1, 1, 1, 1])),
        refused("resize axes", one("Resize", &[1, 1, 2, 2], &["x", "", "sc"], vec![a_ints("axes", &[2, 2])], vec![f32s("sc", &[2], &[2.0, 2.0])]), &["\"n\" Resize"]),
        refused("resize axes count", one("Resize", &[1, 1, 2, 2], &["x", "", "sc"], vec![a_ints("axes", &[2])], vec![f32s("sc", &[2], &[2.0, 2.0])]), &["\"n\" Resize"]),
        refused("resize both", one("Resize", &[1, 1, 2, 2], &["x", "", "sc", "sz"], vec![], vec![f32s("sc", &[4], &[1.0; 4]), i64s("sz", &[1, 1, 2, 2])]), &["\"n\" Resize", "both"]),
        refused("resize none", one("Resize", &[1, 1, 2, 2], &["x"], vec![], vec![]), &["\"n\" Resize"]),
        refused("resize int input", model(13, vec![node("Resize", "n", &["x", "", "sc"], &["y"], vec![])], vec![vi("x", DataType::Int64, &[D::N(1), D::N(2)])], &["y"], vec![f32s("sc", &[2], &[1.0, 2.0])]), &["\"n\" Resize"]),
        refused("upsample scale nan", model(11, vec![node("Upsample", "n", &["x", "sc"], &["y"], vec![])], vec![f32_in("x", &[1, 1, 2, 2])], &["y"], vec![f32s("sc", &[4], &[1.0, 1.0, f32::NAN, 1.0])]), &["\"n\" Upsample"]),
        runs("resize linear align", rz(&[1.0, 1.0, 3.0, 0.5], vec![a_str("mode", "linear"), a_str("coordinate_transformation_mode", "align_corners")])),
        runs("resize nearest tf", rz(&[1.0, 1.0, 3.0, 0.5], vec![a_str("coordinate_transformation_mode", "tf_half_pixel_for_nn"), a_str("nearest_mode", "ceil")])),
    ]
}

#[rustfmt::skip]
fn linalg_cases() -> Vec<Case> {
    vec![
        refused("matmul inner", one("MatMul", &[2, 3], &["x", "w"], vec![], vec![f32s("w", &[4, 2], &[0.0; 8])]), &["\"n\" MatMul"]),
        refused("matmul batch", one("MatMul", &[2, 2, 3], &["x", "w"], vec![], vec![f32s("w", &[3, 3, 2], &[0.0; 18])]), &["\"n\" MatMul"]),
        refused("matmul scalar", one("MatMul", &[], &["x", "w"], vec![], vec![f32s("w", &[1], &[0.0])]), &["\"n\" MatMul"]),
        refused("matmul int", one("MatMul", &[2, 1], &["x", "w"], vec![], vec![i64s("w", &[1])]), &["\"n\" MatMul"]),
        runs("matmul 1-d", one("MatMul", &[3], &["x", "w"], vec![], vec![f32s("w", &[3], &[1.0; 3])])),
        runs("matmul zero k", on_empty("MatMul", &[2, 3], 1, vec![], vec![f32s("w", &[0, 2], &[])])),
        refused("gemm inner", one("Gemm", &[2, 3], &["x", "w"], vec![], vec![f32s("w", &[4, 2], &[0.0; 8])]), &["\"n\" Gemm"]),
        refused("gemm c", one("Gemm", &[2, 3], &["x", "w", "c"], vec![], vec![f32s("w", &[3, 2], &[0.0; 6]), f32s("c", &[3], &[0.0; 3])]), &["\"n\" Gemm"]),
        refused("gemm c rank 3", one("Gemm", &[2, 3], &["x", "w", "c"], vec![], vec![f32s("w", &[3, 2], &[0.0; 6]), f32s("c", &[1, 1, 2], &[0.0; 2])]), &["\"n\" Gemm"]),
        refused("gemm trans nan alpha", one("Gemm", &[3, 2], &["x", "w", "c"], vec![a_int("transA", 1), a_int("transB", 1), a_float("alpha", f32::NAN), a_float("beta", 0.0)], vec![f32s("w", &[4, 3], &[0.0; 12]), f32s("c", &[1], &[0.0])]), &["\"n\" Gemm", "NaN or infinite"]),
        runs("gemm trans", one("Gemm", &[3, 2], &["x", "w", "c"], vec![a_int("transA", 1), a_int("transB", 1), a_float("beta", 0.0)], vec![f32s("w", &[4, 3], &[0.0; 12]), f32s("c", &[1], &[0.0])])),
        runs("gemm zero n", one("Gemm", &[2, 3], &["x", "w"], vec![], vec![f32s("w", &[3, 0], &[])])),
    ]
}

fn rnn_model(
    op: &str,
    inputs: &[&str],
    attrs: Vec<AttributeProto>,
    inits: Vec<TensorProto>,
    x: &[i64],
) -> ModelProto {
    model(
        13,
        vec![node(op, "n", inputs, &["y", "yh"], attrs)],
        vec![f32_in("x", x)],
        &["y", "yh"],
        inits,
    )
}

#[rustfmt::skip]
fn rnn_cases() -> Vec<Case> {
    let lw = || {
        vec![
            f32s("w", &[1, 8, 3], &[0.1; 24]),
            f32s("r", &[1, 8, 2], &[0.1; 16]),
        ]
    };
    let gw = || {
        vec![
            f32s("w", &[1, 6, 3], &[0.1; 18]),
            f32s("r", &[1, 6, 2], &[0.1; 12]),
        ]
    };
    let with = |mut v: Vec<TensorProto>, t: TensorProto| {
        v.push(t);
        v
    };
    vec![
        runs("lstm plain", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2)], lw(), &[2, 1, 3])),
        runs("lstm no hidden_size", rnn_model("LSTM", &["x", "w", "r"], vec![], lw(), &[2, 1, 3])),
        refused("lstm hidden mismatch", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 3)], lw(), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm hidden huge", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", i64::MAX)], lw(), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm hidden 2^62", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 1 << 62)], lw(), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm hidden 0", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 0)], lw(), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm input size", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2)], lw(), &[2, 1, 4]), &["\"n\" LSTM"]),
        refused("lstm x rank", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2)], lw(), &[2, 3]), &["\"n\" LSTM"]),
        refused("lstm bidirectional weights", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2), a_str("direction", "bidirectional")], lw(), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm bias", rnn_model("LSTM", &["x", "w", "r", "b"], vec![a_int("hidden_size", 2)], with(lw(), f32s("b", &[1, 8], &[0.0; 8])), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm h0", rnn_model("LSTM", &["x", "w", "r", "", "", "h"], vec![a_int("hidden_size", 2)], with(lw(), f32s("h", &[1, 2, 2], &[0.0; 4])), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm peepholes", rnn_model("LSTM", &["x", "w", "r", "", "", "", "", "p"], vec![a_int("hidden_size", 2)], with(lw(), f32s("p", &[1, 5], &[0.0; 5])), &[2, 1, 3]), &["\"n\" LSTM"]),
        refused("lstm clip nan", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2), a_float("clip", f32::NAN)], lw(), &[2, 1, 3]), &["\"n\" LSTM", "clip"]),
        refused("lstm layout 2", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2), a_int("layout", 2)], lw(), &[2, 1, 3]), &["\"n\" LSTM", "layout"]),
        refused("lstm sequence_lens f32", rnn_model("LSTM", &["x", "w", "r", "", "sl"], vec![a_int("hidden_size", 2)], with(lw(), f32s("sl", &[1], &[2.0])), &[2, 1, 3]), &["\"n\" LSTM", "sequence_lens"]),
        refused("lstm int weights", rnn_model("LSTM", &["x", "w", "r"], vec![a_int("hidden_size", 2)], vec![TensorProto {name: "w".into(), dims: vec![1, 8, 3], data_type: DataType::Int64 as i32, int64_data: vec![0; 24], ..Default::default()}, f32s("r", &[1, 8, 2], &[0.1; 16])], &[2, 1, 3]), &["\"n\" LSTM"]),
        runs("lstm zero steps", model(13, vec![node("Slice", "s", &["x", "z", "z", "z"], &["e"], vec![]), node("LSTM", "n", &["e", "w", "r"], &["y", "yh"], vec![a_int("hidden_size", 2)])], vec![f32_in("x", &[2, 1, 3])], &["y", "yh"], with(lw(), i64s("z", &[0])))),
        runs("lstm zero batch", model(13, vec![node("Slice", "s", &["x", "z", "z", "one"], &["e"], vec![]), node("LSTM", "n", &["e", "w", "r"], &["y", "yh"], vec![a_int("hidden_size", 2)])], vec![f32_in("x", &[2, 1, 3])], &["y", "yh"], with(with(lw(), i64s("z", &[0])), i64s("one", &[1])))),
        runs("gru plain", rnn_model("GRU", &["x", "w", "r"], vec![a_int("hidden_size", 2), a_int("linear_before_reset", 1)], gw(), &[2, 1, 3])),
        refused("gru hidden mismatch", rnn_model("GRU", &["x", "w", "r"], vec![a_int("hidden_size", 1)], gw(), &[2, 1, 3]), &["\"n\" GRU"]),
        refused("gru hidden huge", rnn_model("GRU", &["x", "w", "r"], vec![a_int("hidden_size", i64::MAX)], gw(), &[2, 1, 3]), &["\"n\" GRU"]),
        refused("gru lstm weights", rnn_model("GRU", &["x", "w", "r"], vec![a_int("hidden_size", 2)], lw(), &[2, 1, 3]), &["\"n\" GRU"]),
        refused("gru bias", rnn_model("GRU", &["x", "w", "r", "b"], vec![a_int("hidden_size", 2)], with(gw(), f32s("b", &[1, 6], &[0.0; 6])), &[2, 1, 3]), &["\"n\" GRU"]),
        refused("gru direction", rnn_model("GRU", &["x", "w", "r"], vec![a_int("hidden_size", 2), a_str("direction", "sideways")], gw(), &[2, 1, 3]), &["\"n\" GRU", "direction"]),
    ]
}

#[rustfmt::skip]
fn quant_cases() -> Vec<Case> {
    let q = |inits: Vec<TensorProto>, attrs: Vec<AttributeProto>, inputs: &[&str]| {
        model(
            13,
            vec![
                node("QuantizeLinear", "n", inputs, &["q"], attrs),
                node("DequantizeLinear", "d", &["q", "s"], &["y"], vec![]),
            ],
            vec![f32_in("x", &[1, 2, 2])],
            &["y"],
            inits,
        )
    };
    vec![
        runs("quantize scale 0", q(vec![f32s("s", &[], &[0.0])], vec![], &["x", "s"])),
        runs("quantize scale nan", q(vec![f32s("s", &[], &[f32::NAN])], vec![], &["x", "s"])),
        runs("quantize scale negative", q(vec![f32s("s", &[], &[-1.0])], vec![], &["x", "s"])),
        refused("quantize int scale", q(vec![i64s("s", &[1])], vec![], &["x", "s"]), &["\"n\" QuantizeLinear"]),
        refused("quantize scale empty", q(vec![f32s("s", &[0], &[])], vec![], &["x", "s"]), &["\"n\" QuantizeLinear"]),
        refused("quantize per-axis length", model(13, vec![node("QuantizeLinear", "n", &["x", "s"], &["y"], vec![a_int("axis", 1)])], vec![f32_in("x", &[1, 2, 2])], &["y"], vec![f32s("s", &[3], &[1.0; 3])]), &["\"n\" QuantizeLinear"]),
        refused("quantize per-axis axis", model(13, vec![node("QuantizeLinear", "n", &["x", "s"], &["y"], vec![a_int("axis", 7)])], vec![f32_in("x", &[1, 2, 2])], &["y"], vec![f32s("s", &[2], &[1.0; 2])]), &["\"n\" QuantizeLinear", "axis"]),
        refused("quantize zp shape", model(13, vec![node("QuantizeLinear", "n", &["x", "s", "z"], &["y"], vec![])], vec![f32_in("x", &[1, 2, 2])], &["y"], vec![f32s("s", &[], &[1.0]), u8s("z", &[2], &[0, 0])]), &["\"n\" QuantizeLinear", "zero point"]),
        refused("quantize to i32", model(13, vec![node("QuantizeLinear", "n", &["x", "s", "z"], &["y"], vec![])], vec![f32_in("x", &[1, 2, 2])], &["y"], vec![f32s("s", &[], &[1.0]), i32s("z", &[0])]), &["\"n\" QuantizeLinear"]),
        refused("quantize output_dtype", model(21, vec![node("QuantizeLinear", "n", &["x", "s"], &["y"], vec![a_int("output_dtype", 99)])], vec![f32_in("x", &[1, 2, 2])], &["y"], vec![f32s("s", &[], &[1.0])]), &["\"n\" QuantizeLinear"]),
        refused("quantize int input", model(13, vec![node("QuantizeLinear", "n", &["x", "s"], &["y"], vec![])], vec![vi("x", DataType::Int64, &[D::N(2)])], &["y"], vec![f32s("s", &[], &[1.0])]), &["\"n\" QuantizeLinear"]),
        refused("dequantize f32 input", model(13, vec![node("DequantizeLinear", "n", &["x", "s"], &["y"], vec![])], vec![f32_in("x", &[2])], &["y"], vec![f32s("s", &[], &[1.0])]), &["\"n\" DequantizeLinear"]),
        runs("dequantize const weight nan scale", model(13, vec![node("DequantizeLinear", "n", &["w", "s", "z"], &["k"], vec![]), node("MatMul", "m", &["x", "k"], &["y"], vec![])], vec![f32_in("x", &[1, 2])], &["y"], vec![u8s("w", &[2, 2], &[1, 2, 3, 4]), f32s("s", &[], &[f32::NAN]), u8s("z", &[], &[3])])),
        runs("dequantize const weight zero scale per-axis", model(13, vec![node("DequantizeLinear", "n", &["w", "s", "z"], &["k"], vec![a_int("axis", 1)]), node("MatMul", "m", &["x", "k"], &["y"], vec![])], vec![f32_in("x", &[1, 2])], &["y"], vec![u8s("w", &[2, 2], &[1, 2, 3, 4]), f32s("s", &[2], &[0.0, -1.0]), u8s("z", &[2], &[3, 255])])),
        refused("dequantize zp type", model(13, vec![node("DequantizeLinear", "n", &["w", "s", "z"], &["y"], vec![])], vec![], &["y"], vec![u8s("w", &[2, 2], &[1, 2, 3, 4]), f32s("s", &[], &[1.0]), i32s("z", &[0])]), &["\"n\" DequantizeLinear", "zero point"]),
    ]
}

#[rustfmt::skip]
fn misc_cases() -> Vec<Case> {
    let shape_of = |dims: &[i64]| {
        model(
            13,
            vec![
                node("ConstantOfShape", "n", &["s"], &["k"], vec![]),
                node("Add", "a", &["x", "k"], &["y"], vec![]),
            ],
            vec![f32_in("x", &[1])],
            &["y"],
            vec![i64s("s", dims)],
        )
    };
    vec![
        refused("constantofshape huge", shape_of(&[BIG, BIG]), &["\"n\" ConstantOfShape"]),
        refused("constantofshape negative", shape_of(&[-1]), &["\"n\" ConstantOfShape"]),
        refused("constantofshape value vector", model(13, vec![node("ConstantOfShape", "n", &["s"], &["y"], vec![AttributeProto {name: "value".into(), r#type: AttributeType::Tensor as i32, t: Some(f32s("", &[2], &[1.0, 2.0])), ..Default::default()}])], vec![], &["y"], vec![i64s("s", &[2])]), &["\"n\" ConstantOfShape", "value"]),
        refused("range huge", one("Range", &[1], &["a", "b", "c"], vec![], vec![f32s("a", &[], &[0.0]), f32s("b", &[], &[1e30]), f32s("c", &[], &[1.0])]), &["\"n\" Range"]),
        refused("range delta 0", one("Range", &[1], &["a", "b", "c"], vec![], vec![i64s("a", &[0]), i64s("b", &[5]), i64s("c", &[0])]), &["\"n\" Range"]),
        refused("range non-scalar", one("Range", &[1], &["a", "b", "c"], vec![], vec![i64s("a", &[0, 1]), i64s("b", &[5]), i64s("c", &[1])]), &["\"n\" Range"]),
        refused("range runtime", one("Range", &[], &["x", "b", "c"], vec![], vec![f32s("b", &[], &[5.0]), f32s("c", &[], &[1.0])]), &["\"n\" Range"]),
        refused("range nan", one("Range", &[1], &["a", "b", "c"], vec![], vec![f32s("a", &[], &[f32::NAN]), f32s("b", &[], &[5.0]), f32s("c", &[], &[1.0])]), &["\"n\" Range"]),
        refused("constant no value", model(13, vec![node("Constant", "n", &[], &["y"], vec![])], vec![], &["y"], vec![]), &["\"n\" Constant"]),
        refused("constant bad raw", model(13, vec![node("Constant", "n", &[], &["y"], vec![AttributeProto {name: "value".into(), r#type: AttributeType::Tensor as i32, t: Some(TensorProto {dims: vec![3], data_type: DataType::Float as i32, raw_data: vec![0; 5], ..Default::default()}), ..Default::default()}])], vec![], &["y"], vec![]), &["\"n\" Constant", "raw bytes"]),
        refused("softmax axis", one("Softmax", &[2, 3], &["x"], vec![a_int("axis", -3)], vec![]), &["\"n\" Softmax", "axis"]),
        refused("softmax axis huge", one("Softmax", &[2, 3], &["x"], vec![a_int("axis", i64::MIN)], vec![]), &["\"n\" Softmax", "axis"]),
        refused("softmax 11 axis", model(11, vec![node("Softmax", "n", &["x"], &["y"], vec![a_int("axis", 4)])], vec![f32_in("x", &[2, 3])], &["y"], vec![]), &["\"n\" Softmax", "axis"]),
        refused("softmax scalar", one("Softmax", &[], &["x"], vec![], vec![]), &["\"n\" Softmax"]),
        refused("reduce axis", one("ReduceMean", &[2, 3], &["x"], vec![a_ints("axes", &[2])], vec![]), &["\"n\" ReduceMean", "axis"]),
        runs("reduce axes repeated", one("ReduceSum", &[2, 3], &["x", "a"], vec![], vec![i64s("a", &[1, -1])])),
        runs("reduce empty axes noop", one("ReduceSum", &[2, 3], &["x", "a"], vec![a_int("noop_with_empty_axes", 1)], vec![i64s("a", &[])])),
        runs("reduce over zero", on_empty("ReduceMax", &[2, 3], 1, vec![a_ints("axes", &[0])], vec![])),
        runs("softmax over zero", on_empty("Softmax", &[2, 3], 1, vec![], vec![])),
        runs("sum over empty axis", on_empty("ReduceSum", &[2, 3], 1, vec![a_int("keepdims", 0)], vec![])),
        runs("reduce max over empty axis", on_empty("ReduceMax", &[2, 3], 1, vec![a_ints("axes", &[1])], vec![])),
        refused("binary broadcast", one("Add", &[2, 3], &["x", "c"], vec![], vec![f32s("c", &[2], &[1.0; 2])]), &["\"n\" Add"]),
        refused("binary dtypes", one("Mul", &[2], &["x", "c"], vec![], vec![i64s("c", &[1, 2])]), &["\"n\" Mul"]),
        runs("div by zero", one("Div", &[2], &["x", "c"], vec![], vec![f32s("c", &[1], &[0.0])])),
        runs("int div by zero const", one("Div", &[2], &["c", "z"], vec![], vec![i64s("c", &[5, 7]), i64s("z", &[0, -0])])),
        runs("int pow negative", model(13, vec![node("Pow", "n", &["c", "e"], &["k"], vec![]), node("Cast", "t", &["k"], &["kf"], vec![a_int("to", 1)]), node("Add", "a", &["x", "kf"], &["y"], vec![])], vec![f32_in("x", &[2])], &["y"], vec![i64s("c", &[5, 7]), i64s("e", &[-1, 64])])),
        runs("int min overflow", model(13, vec![node("Div", "n", &["c", "e"], &["k"], vec![]), node("Cast", "t", &["k"], &["kf"], vec![a_int("to", 1)]), node("Add", "a", &["x", "kf"], &["y"], vec![])], vec![f32_in("x", &[1])], &["y"], vec![i64s("c", &[i64::MIN]), i64s("e", &[-1])])),
        refused("pad value nan", one("Pad", &[2, 2], &["x", "p", "v"], vec![], vec![i64s("p", &[1, 0, 0, 0]), f32s("v", &[], &[f32::NAN])]), &["\"n\"", "NaN or infinite"]),
        refused("pad value -inf", one("Pad", &[2, 2], &["x", "p", "v"], vec![], vec![i64s("p", &[1, 0, 0, 0]), f32s("v", &[], &[f32::NEG_INFINITY])]), &["\"n\"", "NaN or infinite"]),
        refused("clip min nan", one("Clip", &[2], &["x", "lo"], vec![], vec![f32s("lo", &[], &[f32::NAN])]), &["\"n\"", "NaN or infinite"]),
        refused("leakyrelu alpha inf", one("LeakyRelu", &[2], &["x"], vec![a_float("alpha", f32::INFINITY)], vec![]), &["\"n\"", "NaN or infinite"]),
        refused("elu alpha nan", one("Elu", &[2], &["x"], vec![a_float("alpha", f32::NAN)], vec![]), &["\"n\"", "NaN or infinite"]),
        refused("where cond float", one("Where", &[2], &["x", "x", "x"], vec![], vec![]), &["\"n\" Where"]),
        refused("sum no inputs", one("Sum", &[2], &[], vec![], vec![]), &["\"n\" Sum"]),
        runs("sum one input", one("Sum", &[2], &["x"], vec![], vec![])),
        refused("clip bounds runtime", one("Clip", &[2], &["x", "x"], vec![], vec![]), &["\"n\" Clip"]),
        runs("clip min above max", one("Clip", &[2], &["x", "lo", "hi"], vec![], vec![f32s("lo", &[], &[3.0]), f32s("hi", &[], &[-3.0])])),
        refused("clip bound vector", one("Clip", &[2], &["x", "lo"], vec![], vec![f32s("lo", &[2], &[3.0, 1.0])]), &["\"n\" Clip"]),
        refused("leakyrelu int", model(13, vec![node("LeakyRelu", "n", &["x"], &["y"], vec![])], vec![vi("x", DataType::Int64, &[D::N(2)])], &["y"], vec![]), &["\"n\" LeakyRelu"]),
        refused("relu bool", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![vi("x", DataType::Bool, &[D::N(2)])], &["y"], vec![]), &["\"n\" Relu"]),
        refused("not float", one("Not", &[2], &["x"], vec![], vec![]), &["\"n\" Not"]),
        refused("shape of huge", model(13, vec![node("Size", "n", &["x"], &["s"], vec![]), node("Cast", "c", &["s"], &["y"], vec![a_int("to", 1)])], vec![f32_in("x", &[BIG, BIG])], &["y"], vec![]), &["\"x\""]),
        refused("dropout mask huge", model(13, vec![node("Dropout", "n", &["x"], &["y", "m"], vec![])], vec![f32_in("x", &[1 << 30, 1 << 30])], &["y", "m"], vec![]), &["\"x\""]),
        refused("dropout training", one("Dropout", &[2], &["x", "r", "t"], vec![], vec![f32s("r", &[], &[0.5]), TensorProto {name: "t".into(), dims: vec![], data_type: DataType::Bool as i32, int32_data: vec![1], ..Default::default()}]), &["\"n\" Dropout", "training"]),
    ]
}

/// One node `op` named "n" at opset 17 over `x` (f32, `shape`), outputs `outs`.
fn one17(
    op: &str,
    shape: &[i64],
    inputs: &[&str],
    outs: &[&str],
    attrs: Vec<AttributeProto>,
    inits: Vec<TensorProto>,
) -> ModelProto {
    model(
        17,
        vec![node(op, "n", inputs, outs, attrs)],
        vec![f32_in("x", shape)],
        outs,
        inits,
    )
}

/// Normalisations, ArgMax/TopK/CumSum/GatherElements, Tile/DepthToSpace/SpaceToDepth, PRelu
/// and the logical ops: attributes and operands that do not fit, and empty tensors.
#[rustfmt::skip]
fn norm_and_index_cases() -> Vec<Case> {
    let s3 = || vec![f32s("s", &[3], &[1.0; 3])];
    let k = |v: i64| vec![i64s("k", &[v])];
    vec![
        refused("layernorm axis", one17("LayerNormalization", &[2, 3], &["x", "s"], &["y"], vec![a_int("axis", 2)], s3()), &["\"n\" LayerNormalization", "axis"]),
        refused("layernorm scale shape", one17("LayerNormalization", &[2, 3], &["x", "s"], &["y"], vec![], vec![f32s("s", &[4], &[1.0; 4])]), &["\"n\" LayerNormalization", "broadcast"]),
        refused("layernorm mean output", one17("LayerNormalization", &[2, 3], &["x", "s"], &["y", "m"], vec![], s3()), &["\"n\" LayerNormalization", "Mean"]),
        refused("layernorm epsilon nan", one17("LayerNormalization", &[2, 3], &["x", "s"], &["y"], vec![a_float("epsilon", f32::NAN)], s3()), &["\"n\"", "NaN or infinite"]),
        runs("layernorm over empty rows", on_empty("LayerNormalization", &[2, 3], 0, vec![], vec![f32s("w", &[3], &[1.0; 3])])),
        refused("instancenorm 2-D", one17("InstanceNormalization", &[2, 3], &["x", "s", "s"], &["y"], vec![], s3()), &["\"n\" InstanceNormalization"]),
        refused("instancenorm scale length", one17("InstanceNormalization", &[1, 2, 3], &["x", "s", "s"], &["y"], vec![], s3()), &["\"n\" InstanceNormalization"]),
        refused("lpnorm p 3", one17("LpNormalization", &[2, 3], &["x"], &["y"], vec![a_int("p", 3)], vec![]), &["\"n\" LpNormalization", "p=3"]),
        runs("lpnorm over empty axis", on_empty("LpNormalization", &[2, 3], 1, vec![], vec![])),
        refused("argmax axis", one17("ArgMax", &[2, 3], &["x"], &["y"], vec![a_int("axis", 2)], vec![]), &["\"n\" ArgMax", "axis"]),
        refused("argmin over empty axis", on_empty("ArgMin", &[2, 3], 1, vec![a_int("axis", 1)], vec![]), &["\"n\" ArgMin"]),
        runs("argmax over empty rows", on_empty("ArgMax", &[2, 3], 0, vec![a_int("axis", 1)], vec![])),
        refused("topk k too large", one17("TopK", &[2, 3], &["x", "k"], &["v", "i"], vec![], k(4)), &["\"n\" TopK", "K = 4"]),
        refused("topk k negative", one17("TopK", &[2, 3], &["x", "k"], &["v", "i"], vec![], k(-1)), &["\"n\" TopK", "K = -1"]),
        refused("topk k vector", one17("TopK", &[2, 3], &["x", "k"], &["v", "i"], vec![], vec![i64s("k", &[1, 2])]), &["\"n\" TopK"]),
        refused("topk k runtime", model(17, vec![node("Cast", "c", &["x"], &["xi"], vec![a_int("to", 7)]), node("Slice", "l", &["xi", "z", "o"], &["k"], vec![]), node("TopK", "n", &["x", "k"], &["v", "i"], vec![])], vec![f32_in("x", &[3])], &["v", "i"], vec![i64s("z", &[0]), i64s("o", &[1])]), &["\"n\" TopK", "constant"]),
        refused("cumsum axis", one17("CumSum", &[2, 3], &["x", "a"], &["y"], vec![], vec![i64s("a", &[2])]), &["\"n\" CumSum", "axis"]),
        refused("gatherelements rank", one17("GatherElements", &[2, 3], &["x", "i"], &["y"], vec![], vec![i64s("i", &[0, 1])]), &["\"n\" GatherElements"]),
        refused("gatherelements wider", one17("GatherElements", &[2, 3], &["x", "i"], &["y"], vec![a_int("axis", 1)], vec![TensorProto {name: "i".into(), dims: vec![3, 1], data_type: DataType::Int64 as i32, int64_data: vec![0; 3], ..Default::default()}]), &["\"n\" GatherElements"]),
        refused("tile repeats short", one17("Tile", &[2, 3], &["x", "r"], &["y"], vec![], vec![i64s("r", &[2])]), &["\"n\" Tile", "repeats"]),
        refused("tile repeats negative", one17("Tile", &[2, 3], &["x", "r"], &["y"], vec![], vec![i64s("r", &[1, -2])]), &["\"n\" Tile", "repeats"]),
        refused("tile huge", one17("Tile", &[2, 3], &["x", "r"], &["y"], vec![], vec![i64s("r", &[BIG, BIG])]), &["\"n\" Tile"]),
        runs("tile zero", one17("Tile", &[2, 3], &["x", "r"], &["y"], vec![], vec![i64s("r", &[0, 2])])),
        refused("depthtospace channels", one17("DepthToSpace", &[1, 6, 2, 2], &["x"], &["y"], vec![a_int("blocksize", 2)], vec![]), &["\"n\" DepthToSpace", "channels"]),
        refused("depthtospace blocksize 0", one17("DepthToSpace", &[1, 4, 2, 2], &["x"], &["y"], vec![a_int("blocksize", 0)], vec![]), &["\"n\" DepthToSpace", "blocksize"]),
        refused("depthtospace blocksize huge", one17("DepthToSpace", &[1, 4, 2, 2], &["x"], &["y"], vec![a_int("blocksize", i64::MAX)], vec![]), &["\"n\" DepthToSpace"]),
        refused("depthtospace mode", one17("DepthToSpace", &[1, 4, 2, 2], &["x"], &["y"], vec![a_int("blocksize", 2), a_str("mode", "XYZ")], vec![]), &["\"n\" DepthToSpace", "mode"]),
        refused("spacetodepth 3-D", one17("SpaceToDepth", &[4, 2, 2], &["x"], &["y"], vec![a_int("blocksize", 2)], vec![]), &["\"n\" SpaceToDepth", "4-D"]),
        refused("spacetodepth not divisible", one17("SpaceToDepth", &[1, 1, 3, 4], &["x"], &["y"], vec![a_int("blocksize", 2)], vec![]), &["\"n\" SpaceToDepth", "blocks"]),
        refused("prelu slope wider", one17("PRelu", &[3], &["x", "s"], &["y"], vec![], vec![f32s("s", &[2, 3], &[0.1; 6])]), &["\"n\" PRelu", "slope"]),
        refused("and float", one17("And", &[2], &["x", "x"], &["y"], vec![], vec![]), &["\"n\" And"]),
        refused("selu int", model(17, vec![node("Selu", "n", &["x"], &["y"], vec![])], vec![vi("x", DataType::Int64, &[D::N(2)])], &["y"], vec![]), &["\"n\" Selu"]),
        refused("celu alpha 0", one17("Celu", &[2], &["x"], &["y"], vec![a_float("alpha", 0.0)], vec![]), &["\"n\" Celu", "alpha"]),
        runs("logsumexp over empty axis", on_empty("ReduceLogSumExp", &[2, 3], 1, vec![a_ints("axes", &[1])], vec![])),
    ]
}

#[rustfmt::skip]
fn graph_cases() -> Vec<Case> {
    vec![
        refused("empty graph", model(13, vec![], vec![], &[], vec![]), &["no outputs"]),
        refused("no outputs", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[2])], &[], vec![]), &["no outputs"]),
        runs("output is input", model(13, vec![], vec![f32_in("x", &[2])], &["x"], vec![])),
        runs("output is a reshape of an input", one("Reshape", &[2, 3], &["x", "s"], vec![], vec![i64s("s", &[3, 2])])),
        runs("outputs are an input and its flattening", model(13, vec![node("Flatten", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[2, 3, 2])], &["y", "x", "y"], vec![])),
        runs("duplicate output names", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[2])], &["y", "y"], vec![])),
        refused("node output twice", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![]), node("Relu", "m", &["x"], &["y"], vec![])], vec![f32_in("x", &[2])], &["y"], vec![]), &["\"m\"", "twice"]),
        refused("node output shadows input", model(13, vec![node("Relu", "n", &["x"], &["x"], vec![])], vec![f32_in("x", &[2])], &["x"], vec![]), &["\"n\"", "twice"]),
        refused("node reads itself", model(13, vec![node("Relu", "n", &["y"], &["y"], vec![])], vec![f32_in("x", &[2])], &["y"], vec![]), &["\"n\"", "topologically"]),
        refused("cycle", model(13, vec![node("Relu", "a", &["b_out"], &["a_out"], vec![]), node("Relu", "b", &["a_out"], &["b_out"], vec![])], vec![f32_in("x", &[2])], &["a_out"], vec![]), &["\"a\"", "topologically"]),
        refused("output named twice in node", model(13, vec![node("Split", "n", &["x"], &["y", "y"], vec![])], vec![f32_in("x", &[2])], &["y"], vec![]), &["\"n\"", "twice"]),
        refused("input dim -5", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[2, -5])], &["y"], vec![]), &["\"x\"", "dimension 1"]),
        refused("input dim 0", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[2, 0])], &["y"], vec![]), &["\"x\"", "dimension 1"]),
        refused("input dims 2^40", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[BIG, BIG])], &["y"], vec![]), &["\"x\""]),
        refused("input dim 2^40", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[BIG])], &["y"], vec![]), &["\"x\""]),
        refused("input string", model(13, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![vi("x", DataType::String, &[D::N(2)])], &["y"], vec![]), &["\"x\"", "string"]),
        refused("initializer raw length", one("Add", &[2], &["x", "c"], vec![], vec![TensorProto {name: "c".into(), dims: vec![2], data_type: DataType::Float as i32, raw_data: vec![0; 7], ..Default::default()}]), &["\"c\"", "raw bytes"]),
        refused("initializer dims 2^40", one("Add", &[2], &["x", "c"], vec![], vec![TensorProto {name: "c".into(), dims: vec![BIG, BIG], data_type: DataType::Float as i32, raw_data: vec![0; 8], ..Default::default()}]), &["\"c\"", "too large"]),
        refused("initializer dims -5", one("Add", &[2], &["x", "c"], vec![], vec![f32s("c", &[-5], &[])]), &["\"c\"", "negative"]),
        refused("initializer double raw", one("Add", &[2], &["x", "c"], vec![], vec![TensorProto {name: "c".into(), dims: vec![2], data_type: DataType::Double as i32, raw_data: vec![0; 12], ..Default::default()}]), &["\"c\""]),
        refused("initializer f16 typed", one("Add", &[2], &["x", "c"], vec![], vec![TensorProto {name: "c".into(), dims: vec![3], data_type: DataType::Float16 as i32, int32_data: vec![1, 2], ..Default::default()}]), &["\"c\""]),
        refused("opset huge", model(i64::MAX, vec![node("Relu", "n", &["x"], &["y"], vec![])], vec![f32_in("x", &[2])], &["y"], vec![]), &["opset"]),
        refused("no graph", ModelProto::default(), &["graph"]),
    ]
}

#[test]
fn conv_and_pool_attributes() {
    let mut cases = conv_cases();
    cases.extend(conv_transpose_cases());
    cases.extend(pool_cases());
    assert_none(failures(cases));
}

#[test]
fn shape_op_attributes() {
    let mut cases = shape_cases();
    cases.extend(resize_cases());
    assert_none(failures(cases));
}

#[test]
fn linalg_rnn_and_quant_operands() {
    let mut cases = linalg_cases();
    cases.extend(rnn_cases());
    cases.extend(quant_cases());
    assert_none(failures(cases));
}

#[test]
fn misc_ops_and_graph_structure() {
    let mut cases = misc_cases();
    cases.extend(norm_and_index_cases());
    cases.extend(graph_cases());
    assert_none(failures(cases));
}

/// A graph output that is a view of a graph input (a Flatten, a Reshape) gets its own copy:
/// the runtime refuses an output sharing the caller's input, which also stopped calibration of
/// any model that reshapes its input first (an MLP's Flatten), whose layers' inputs are probed
/// as outputs.
#[test]
fn outputs_that_are_views_of_inputs_compile_run_and_calibrate() {
    let w: Vec<f32> = (0..4 * 12)
        .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5)
        .collect();
    let m = model(
        13,
        vec![
            node("Flatten", "flat", &["x"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "w"], &["y"], vec![a_int("transB", 1)]),
        ],
        vec![f32_in("x", &[1, 3, 4])],
        &["y", "f"],
        vec![f32s("w", &[4, 12], &w)],
    );
    let x: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.5).collect();
    let want: Vec<f32> = (0..4)
        .map(|o| (0..12).map(|i| w[o * 12 + i] * x[i]).sum())
        .collect();
    let calib: Vec<f32> = (0..8 * 12).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
    for precision in [Precision::Fp32, Precision::Int8] {
        let module = import_proto(&m, &[]).unwrap();
        let quant = (precision == Precision::Int8).then(|| QuantOptions {
            method: Method::MinMax,
            calibrate: vec![Batch {
                input: None,
                data: Tensor::from_vec(&[8, 3, 4], calib.clone()).unwrap(),
            }],
            validate: None,
            max_drop: None,
            progress: false,
        });
        let opts = CompileOptions {
            precision,
            quant,
            ..Default::default()
        };
        let (bytes, _) = compile_module(module, "mlp.onnx", &[], &opts)
            .unwrap_or_else(|e| panic!("{precision:?}: {e:#}"));
        let model = Model::from_bytes(&bytes).unwrap();
        let names: Vec<&str> = model
            .graph()
            .outputs
            .iter()
            .map(|&o| model.graph().tensors[o].name.as_str())
            .collect();
        assert_eq!(
            names,
            ["y", "f"],
            "{precision:?}: the outputs keep their names and order"
        );
        let mut s = Session::new(model, SessionOptions::with_threads(1)).unwrap();
        let out = s
            .run_tensors(&[Tensor::from_vec(&[1, 3, 4], x.clone()).unwrap()])
            .unwrap();
        assert_eq!(out[1].shape, [1, 12]);
        assert_eq!(
            out[1].as_slice::<f32>().unwrap(),
            x,
            "{precision:?}: f is x flattened"
        );
        for (g, w) in out[0].as_slice::<f32>().unwrap().iter().zip(&want) {
            assert!((g - w).abs() < 0.05, "{precision:?}: y {g} against {w}");
        }
    }
}

#[test]
fn gather_indices_out_of_range_at_run_time() {
    let m = model(
        13,
        vec![node("Gather", "n", &["x", "i"], &["y"], vec![])],
        vec![f32_in("x", &[3, 2]), vi("i", DataType::Int64, &[D::N(2)])],
        &["y"],
        vec![],
    );
    for bad in [3i64, -4, i64::MIN, i64::MAX] {
        let feed = vec![
            Tensor::zeros(DType::F32, &[3, 2]),
            Tensor::from_vec(&[2], vec![0i64, bad]).unwrap(),
        ];
        match outcome(&m, &feed) {
            Err(p) => panic!("index {bad}: {p}"),
            Ok(Ok(())) => panic!("index {bad}: accepted"),
            Ok(Err(e)) => assert!(e.contains("run:"), "index {bad}: {e}"),
        }
    }
}

/// Every way `mutate` changes one thing in `base`: each int attribute of each node, each
/// initializer's first dimension, each small integer initializer's first value.
fn mutations(base: &ModelProto) -> Vec<(String, ModelProto)> {
    let g = base.graph.as_ref().expect("graph");
    let mut out = Vec::new();
    let values = [0i64, -1, -7, 3, 1 << 40, i64::MAX, i64::MIN];
    for (k, n) in g.node.iter().enumerate() {
        for (a, attr) in n.attribute.iter().enumerate() {
            let ints = attr.r#type == AttributeType::Ints as i32 && !attr.ints.is_empty();
            if attr.r#type != AttributeType::Int as i32 && !ints {
                continue;
            }
            for &v in &values {
                let mut m = base.clone();
                let at = &mut m.graph.as_mut().unwrap().node[k].attribute[a];
                if ints {
                    let last = at.ints.len() - 1;
                    at.ints[last] = v;
                } else {
                    at.i = v;
                }
                out.push((format!("node #{k} {} {}={v}", n.op_type, attr.name), m));
            }
        }
    }
    for (i, t) in g.initializer.iter().enumerate() {
        let Some(&d0) = t.dims.first() else { continue };
        for d in [0, d0 + 1, 1 << 40] {
            let mut m = base.clone();
            m.graph.as_mut().unwrap().initializer[i].dims[0] = d;
            out.push((format!("initializer {} dims[0]={d}", t.name), m));
        }
        let is_int = t.data_type == DataType::Int64 as i32;
        let n: i64 = t.dims.iter().product();
        if is_int && n <= 16 {
            for &v in &values {
                let mut m = base.clone();
                let t = &mut m.graph.as_mut().unwrap().initializer[i];
                if t.raw_data.len() >= 8 {
                    t.raw_data[..8].copy_from_slice(&v.to_le_bytes());
                } else if let Some(x) = t.int64_data.first_mut() {
                    *x = v;
                } else {
                    continue;
                }
                out.push((format!("initializer {}[0]={v}", t.name), m));
            }
        }
    }
    out
}

/// Each mutation of a reference model: refused with an error, or compiled and run; never a panic.
fn mutated_reference_model(file: &str) {
    let Some(dir) = common::models_dir() else {
        return;
    };
    let base = tract_onnx::onnx()
        .proto_model_for_path(dir.join(file))
        .expect("reference model parses");
    let mut bad = Vec::new();
    let (mut refused, mut ran) = (0, 0);
    let mut files = HashSet::new();
    for (what, m) in mutations(&base) {
        match outcome_once(&m, &[], &mut files) {
            Err(p) => bad.push(format!("{file}: {what}: {p}")),
            Ok(Ok(())) => ran += 1,
            Ok(Err(e)) if e.is_empty() => bad.push(format!("{file}: {what}: empty error")),
            Ok(Err(_)) => refused += 1,
        }
    }
    eprintln!("{file}: {refused} mutations refused, {ran} ran");
    assert_none(bad);
}

#[test]
fn mutated_mnist_cnn() {
    mutated_reference_model("seed_cnn_mnist.onnx");
}

#[test]
fn mutated_lstm_textgen() {
    mutated_reference_model("seed_lstm_textgen.onnx");
}

#[test]
fn mutated_silero_vad() {
    mutated_reference_model("silero_vad_16k_sequence.onnx");
}

/// Names with control characters (a terminal escape in a node, a bell in an output) compile
/// with the characters written as escapes, so `inspect` and `run` never send them to a
/// terminal; a `.efm` file that holds one raw is refused on load, naming the string.
#[test]
fn control_characters_in_names_are_escaped_and_refused_raw() {
    let m = model(
        13,
        vec![node(
            "Relu",
            "conv\u{1b}]0;owned\u{7}",
            &["x"],
            &["pro\u{1b}[31mbs"],
            vec![],
        )],
        vec![f32_in("x", &[1, 4])],
        &["pro\u{1b}[31mbs"],
        vec![],
    );
    let bytes = compile(&m).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let g = model.graph();
    assert_eq!(g.tensors[g.outputs[0]].name, "pro\\u{1b}[31mbs");
    assert_eq!(g.nodes[0].name, "conv\\u{1b}]0;owned\\u{7}");
    load_and_run(&bytes, &[]).unwrap();
    // The same file with a raw escape in its metadata, checksums fixed.
    let mut parsed = edgefuse_runtime::format::parse(&bytes).unwrap();
    parsed.meta.graph.nodes[0].name = "conv\u{1b}[2J".into();
    let raw = edgefuse_runtime::format::write(parsed.meta, &[None, None]).unwrap();
    let e = Model::from_bytes(&raw).err().unwrap().to_string();
    assert!(
        e.contains("node 0's name holds a control character: \"conv\\u{1b}[2J\""),
        "{e}"
    );
}

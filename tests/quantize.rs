//! fp16 and int8 compilation through the CLI: sizes, accuracy against fp32 and the labels, the
//! calibration summary in the file, the HTML report, and refusals of bad options and data.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::ir::ops::UnaryOp;
use edgefuse_runtime::ir::Op;
use edgefuse_runtime::{DType, Model};

fn data_dir(models: &Path) -> PathBuf {
    models.parent().unwrap().join("data")
}

/// `edgefuse compile` with `args` (with the refs' input shapes when `ref_shapes`, else batch 1);
/// panics with stderr on failure; returns stdout.
fn compile(models: &Path, model: &str, out: &Path, args: &[&str], ref_shapes: bool) -> String {
    let r = refs(models, model);
    let mut cmd = edgefuse();
    cmd.arg("compile")
        .arg(models.join(format!("{model}.onnx")))
        .arg("-o")
        .arg(out)
        .args(args);
    for (name, _, shape) in r.inputs.iter().filter(|_| ref_shapes) {
        let s: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        cmd.arg("--input").arg(format!("{name}={}", s.join("x")));
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "compile {model} {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Argmax of each row of output 0 for the refs' inputs.
fn top1_on_refs(efm: &Path, models: &Path, model: &str) -> Vec<usize> {
    let r = refs(models, model);
    let inputs: Vec<_> = r
        .inputs
        .iter()
        .map(|(_, f, _)| edgefuse::npy::read(f).unwrap())
        .collect();
    let mut s = Session::new(Model::load(efm).unwrap(), SessionOptions::with_threads(2)).unwrap();
    let out = s.run_tensors(&inputs).unwrap();
    argmax_rows(
        out[0].as_slice::<f32>().unwrap(),
        *out[0].shape.last().unwrap(),
    )
}

fn argmax_rows(v: &[f32], classes: usize) -> Vec<usize> {
    v.chunks_exact(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (k, &x)| if x > b.1 { (k, x) } else { b },
                )
                .0
        })
        .collect()
}

#[test]
fn fp16_halves_the_weights_and_keeps_every_top1() {
    let Some(models) = models_dir() else { return };
    for model in [
        "seed_cnn_mnist",
        "seed_cnn_fashion",
        "seed_lstm_textgen",
        "efficientnet_lite0",
    ] {
        let fp32 = compiled(&models, model);
        let fp16 = scratch_dir().join(format!("{model}-fp16.efm"));
        let stdout = compile(&models, model, &fp16, &["--precision", "fp16"], true);
        assert!(stdout.contains("half precision"), "{stdout}");
        let (a, b) = (
            Model::load(&fp32).unwrap().weights_len() as f64,
            Model::load(&fp16).unwrap().weights_len() as f64,
        );
        eprintln!("{model}: weights {a} → {b} bytes ({:.3}×)", b / a);
        assert!(b <= 0.52 * a, "{model}: fp16 weights {b} vs fp32 {a}");
        let want = top1_on_refs(&fp32, &models, model);
        let got = top1_on_refs(&fp16, &models, model);
        assert_eq!(got, want, "{model}: fp16 top-1 differs from fp32");
    }
}

/// Compiles `model` to int8 with `args`, returns (stdout, the summary from `inspect --json`).
fn int8(models: &Path, model: &str, tag: &str, args: &[&str]) -> (String, serde_json::Value) {
    let out = scratch_dir().join(format!("{model}-{tag}.efm"));
    let mut all = vec!["--precision", "int8"];
    all.extend_from_slice(args);
    let stdout = compile(models, model, &out, &all, false);
    eprintln!("{stdout}");
    let o = edgefuse()
        .args(["inspect", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = edgefuse().arg("inspect").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("int8       "),
        "inspect shows no calibration:\n{text}"
    );
    (stdout, j)
}

fn drop_of(j: &serde_json::Value) -> (f64, f64) {
    let c = &j["provenance"]["calibration"];
    (c["fp32"].as_f64().unwrap(), c["int8"].as_f64().unwrap())
}

#[test]
fn mnist_int8_drops_at_most_0_3_points_on_2000_digits() {
    let Some(models) = models_dir() else { return };
    let d = data_dir(&models).join("mnist");
    let report = scratch_dir().join("mnist-int8.html");
    let (stdout, j) = int8(
        &models,
        "seed_cnn_mnist",
        "int8",
        &[
            "--calibrate",
            d.join("train-images-idx3-ubyte.gz").to_str().unwrap(),
            "--validate",
            d.join("test-images-idx3-ubyte.gz").to_str().unwrap(),
            "--max-drop",
            "0.3",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let (f, q) = drop_of(&j);
    assert!((f - 96.8).abs() < 0.3, "fp32 top-1 {f}");
    assert!(f - q <= 0.3, "int8 top-1 {q} vs fp32 {f}");
    assert_eq!(j["provenance"]["calibration"]["validate_samples"], 2000);
    assert!(stdout.contains("out SQNR"), "{stdout}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("<table"));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "the page loads nothing"
    );
    // int8 weights: the file is about a quarter of the fp32 one.
    let fp32 = std::fs::metadata(compiled(&models, "seed_cnn_mnist"))
        .unwrap()
        .len() as f64;
    let int8 = j["file_bytes"].as_f64().unwrap();
    assert!(int8 <= 0.4 * fp32, "int8 file {int8} vs fp32 {fp32}");
}

#[test]
fn fashion_int8_on_calib_2k() {
    let Some(models) = models_dir() else { return };
    let d = data_dir(&models).join("fashion-mnist");
    let (_, j) = int8(
        &models,
        "seed_cnn_fashion",
        "int8",
        &[
            "--calibrate",
            d.join("calib-2k-images-idx3-ubyte.gz").to_str().unwrap(),
            "--validate",
            d.join("t10k-images-idx3-ubyte.gz").to_str().unwrap(),
            "--max-drop",
            "0.3",
        ],
    );
    let (f, q) = drop_of(&j);
    assert!((f - 88.0).abs() < 0.3, "fp32 top-1 {f}");
    assert!(f - q <= 0.3, "int8 top-1 {q} vs fp32 {f}");
    assert_eq!(j["provenance"]["calibration"]["validate_samples"], 10000);
}

#[test]
fn lstm_int8_next_word_drop_at_most_0_5_points() {
    let Some(models) = models_dir() else { return };
    let text = data_dir(&models).join("text");
    let calib = refs(&models, "seed_lstm_textgen").inputs[0].1.clone();
    let (_, j) = int8(
        &models,
        "seed_lstm_textgen",
        "int8",
        &[
            "--calibrate",
            calib.to_str().unwrap(),
            "--validate",
            text.join("seed_lstm_test_x.npy").to_str().unwrap(),
            "--validate-labels",
            text.join("seed_lstm_test_y.npy").to_str().unwrap(),
            "--max-drop",
            "0.5",
        ],
    );
    let (f, q) = drop_of(&j);
    assert!((f - 23.3).abs() < 0.3, "fp32 top-1 {f}");
    assert!(f - q <= 0.5, "int8 top-1 {q} vs fp32 {f}");

    // The LSTM, the embedding and the output Gemm run int8: the file stores bytes.
    let efm = scratch_dir().join("seed_lstm_textgen-int8.efm");
    let model = Model::load(&efm).unwrap();
    let ops: Vec<&str> = model.graph().nodes.iter().map(|n| n.op.name()).collect();
    for op in ["QLstm", "QGather", "QGemm"] {
        assert!(ops.contains(&op), "no {op} in {ops:?}");
    }
    assert!(!ops.contains(&"LSTM"), "a float LSTM is left: {ops:?}");
    let onnx = std::fs::metadata(models.join("seed_lstm_textgen.onnx"))
        .unwrap()
        .len() as f64;
    let int8 = std::fs::metadata(&efm).unwrap().len() as f64;
    assert!(
        int8 <= 0.27 * onnx,
        "int8 file {int8} is {:.3}× the ONNX",
        int8 / onnx
    );

    // Next-word top-1 of the file itself, one window at a time, against the labels.
    let x = edgefuse::npy::read(&text.join("seed_lstm_test_x.npy")).unwrap();
    let y = edgefuse::npy::read(&text.join("seed_lstm_test_y.npy")).unwrap();
    let (x, y) = (x.as_slice::<i64>().unwrap(), y.as_slice::<i64>().unwrap());
    let mut s = Session::new(model, SessionOptions::with_threads(1)).unwrap();
    let mut hits = 0;
    for (w, &label) in x.chunks_exact(20).zip(y) {
        let t = edgefuse_runtime::Tensor::from_vec(&[1, 20], w.to_vec()).unwrap();
        let out = s.run_tensors(&[t]).unwrap();
        hits += (argmax_rows(out[0].as_slice::<f32>().unwrap(), 1000)[0] as i64 == label) as usize;
    }
    let top1 = 100.0 * hits as f64 / y.len() as f64;
    assert!(f - top1 <= 0.5, "the int8 file's top-1 {top1} vs fp32 {f}");
}

#[test]
fn bad_quantization_options_and_data_are_refused_with_one_line() {
    let Some(models) = models_dir() else { return };
    let onnx = models.join("seed_cnn_mnist.onnx");
    let junk = scratch_dir().join("junk.npy");
    std::fs::write(&junk, b"not a numpy file").unwrap();
    let wrong = scratch_dir().join("wrong-shape.npy");
    edgefuse::npy::write(
        &wrong,
        edgefuse_runtime::Tensor::from_vec(&[3, 5], vec![0f32; 15])
            .unwrap()
            .view(),
    )
    .unwrap();
    let empty = scratch_dir().join("no-samples.npy");
    edgefuse::npy::write(
        &empty,
        edgefuse_runtime::Tensor::from_vec(&[0, 1, 28, 28], Vec::<f32>::new())
            .unwrap()
            .view(),
    )
    .unwrap();
    let missing = scratch_dir().join("missing.npy");
    let d = data_dir(&models).join("mnist");
    let test_images = d.join("test-images-idx3-ubyte.gz");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--precision".into(), "int8".into()], "--calibrate"),
        (
            vec!["--calibrate".into(), test_images.display().to_string()],
            "--precision int8",
        ),
        (
            vec![
                "--precision".into(),
                "int8".into(),
                "--calibrate".into(),
                junk.display().to_string(),
            ],
            "junk.npy",
        ),
        (
            vec![
                "--precision".into(),
                "int8".into(),
                "--calibrate".into(),
                missing.display().to_string(),
            ],
            "missing.npy",
        ),
        (
            vec![
                "--precision".into(),
                "int8".into(),
                "--calibrate".into(),
                wrong.display().to_string(),
            ],
            "does not split",
        ),
        (
            vec![
                "--precision".into(),
                "int8".into(),
                "--calibrate".into(),
                empty.display().to_string(),
            ],
            "holds no samples",
        ),
        (
            vec![
                "--precision".into(),
                "int8".into(),
                "--calibrate".into(),
                test_images.display().to_string(),
                "--max-drop".into(),
                "0.5".into(),
            ],
            "--validate",
        ),
        (
            vec![
                "--precision".into(),
                "int8".into(),
                "--calibrate".into(),
                data_dir(&models).join("images").display().to_string(),
            ],
            "--preprocess",
        ),
    ];
    for (args, needle) in cases {
        let o = edgefuse()
            .arg("compile")
            .arg(&onnx)
            .arg("-o")
            .arg(scratch_dir().join("refused.efm"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} was accepted");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: error does not name {needle}: {err}"
        );
    }
}

/// `--calibrate` on a folder of photographs, preprocessed by the compile's `--preprocess` spec:
/// EfficientNet-Lite0 int8 keeps fp32's top-1 on the reference input (chelsea, a tabby cat).
#[test]
fn image_folder_calibration_uses_the_preprocessing_spec() {
    let Some(models) = models_dir() else { return };
    let images = data_dir(&models).join("images");
    let m = "efficientnet_lite0";
    let fp32 = scratch_dir().join("eff-folder-fp32.efm");
    let int8 = scratch_dir().join("eff-folder-int8.efm");
    compile(&models, m, &fp32, &[], true);
    let cal = images.display().to_string();
    let out = compile(
        &models,
        m,
        &int8,
        &[
            "--precision",
            "int8",
            "--calibrate",
            &cal,
            "--preprocess",
            "efficientnet_lite0",
        ],
        true,
    );
    assert!(out.contains("int8"), "{out}");
    let want = top1_on_refs(&fp32, &models, m);
    assert_eq!(top1_on_refs(&int8, &models, m), want);
    let (a, b) = (
        std::fs::metadata(&fp32).unwrap().len(),
        std::fs::metadata(&int8).unwrap().len(),
    );
    assert!(
        b * 3 < a,
        "int8 file {b} bytes is not under a third of fp32's {a}"
    );
}

/// onnxruntime's `quantize_dynamic` MatMul (a 1024 × 160 layer with a bias) compiles to one
/// DynamicQuantizeMatMul reading the i8 weights: the file holds them as bytes (about a quarter
/// of the f32 layer), and nothing of the float chain is left.
#[test]
fn quantize_dynamic_matmul_keeps_int8_weights() {
    let onnx = repo_root().join("tests/ops/dynamic/dynamic_int8_row_per_tensor_bias.onnx");
    let efm = scratch_dir().join("dynamic_int8_row.efm");
    let o = edgefuse()
        .arg("compile")
        .arg(&onnx)
        .arg("-o")
        .arg(&efm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = Model::load(&efm).unwrap();
    let g = model.graph();
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["DynamicQuantizeMatMul"], "{ops:?}");
    let w = &g.tensors[g.nodes[0].inputs[1]];
    assert_eq!((w.dtype, w.shape.as_slice()), (DType::I8, &[1024, 160][..]));
    let size = std::fs::metadata(&efm).unwrap().len();
    let f32_weights = 1024 * 160 * 4;
    assert!(
        size < f32_weights / 3,
        "the file is {size} bytes; the f32 weights alone would be {f32_weights}"
    );
}

/// onnxruntime's `quantize_dynamic` Conv chain, with the TF-style zero Pad before each layer
/// and the Clip / Relu after it, compiles to DynamicQuantizeConv alone: the pads, bias and
/// activation folded in, the i8 filters kept as bytes.
#[test]
fn quantize_dynamic_conv_keeps_int8_weights_and_folds_pad_bias_activation() {
    let onnx = repo_root().join("tests/ops/dynamic/dynamic_conv_depthwise_wide_tf_pad.onnx");
    let efm = scratch_dir().join("dynamic_conv_dw.efm");
    let o = edgefuse()
        .arg("compile")
        .arg(&onnx)
        .arg("-o")
        .arg(&efm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = Model::load(&efm).unwrap();
    let g = model.graph();
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        ["DynamicQuantizeConv", "DynamicQuantizeConv"],
        "{ops:?}"
    );
    for (node, k, pads, act) in [
        (
            &g.nodes[0],
            3,
            [0, 0, 1, 1],
            UnaryOp::Clip { min: 0.0, max: 6.0 },
        ),
        (&g.nodes[1], 5, [2, 2, 2, 2], UnaryOp::Relu),
    ] {
        let Op::DynamicQuantizeConv(op) = &node.op else {
            unreachable!("checked above")
        };
        assert_eq!(op.conv.pads, pads);
        assert_eq!(op.conv.act, Some(act));
        assert!(op.conv.has_bias);
        let w = &g.tensors[node.inputs[1]];
        assert_eq!(
            (w.dtype, w.shape.as_slice()),
            (DType::I8, &[24, 1, k, k][..])
        );
    }
}

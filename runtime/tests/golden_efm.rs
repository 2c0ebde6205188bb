//! `.efm` files compiled elsewhere (on the x86-64 host) run here and match onnxruntime's outputs
//! within `tol · max(1, max|ref|)` (1e-4; int8 models their own bound). This is how the aarch64 leg proves a file is portable: the
//! host compiles, `scripts/test-aarch64.sh` runs this test under qemu-aarch64.
//!
//! `EDGEFUSE_EFM_DIR` names a folder of `<model>.efm` files; the references are read from
//! `../shared/models/refs/<model>/` (or `$EDGEFUSE_SHARED/models/refs`). Without the variable the
//! test says it was skipped; with `EDGEFUSE_REQUIRE_EFM=1` a missing folder or file fails it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{DType, Model, Tensor};

/// Model and tolerance factor, as in the root package's `tests/common` table: MobileNetV2 QDQ runs
/// in int8 while its refs simulate the QDQ in float, so it may differ by 12 steps of its 1/256 output.
const MODELS: &[(&str, f32)] = &[
    ("seed_cnn_mnist", 1e-4),
    ("seed_cnn_fashion", 1e-4),
    ("seed_lstm_textgen", 1e-4),
    ("efficientnet_lite0", 1e-4),
    ("mobilenet_v2_int8_qdq", 0.047),
    ("silero_vad_16k_sequence", 1e-4),
    ("ddddocr_crnn", 1e-4),
];

fn required() -> bool {
    std::env::var("EDGEFUSE_REQUIRE_EFM").as_deref() == Ok("1")
}

fn refs_dir() -> PathBuf {
    std::env::var_os("EDGEFUSE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("models/refs")
}

/// Reads a C-order `.npy` of f32/i64/i32 into a runtime tensor.
fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => panic!("{}: unsupported dtype {other:?}", path.display()),
    };
    match descr.as_str() {
        "<f4" => Tensor::from_vec(&shape, npy.into_vec::<f32>().unwrap()).unwrap(),
        "<i8" => Tensor::from_vec(&shape, npy.into_vec::<i64>().unwrap()).unwrap(),
        "<i4" => Tensor::from_vec(&shape, npy.into_vec::<i32>().unwrap()).unwrap(),
        d => panic!("{}: unsupported dtype {d}", path.display()),
    }
}

fn check(efm_dir: &Path, model: &str, tol: f32) {
    let efm = efm_dir.join(format!("{model}.efm"));
    if !efm.exists() {
        assert!(!required(), "{} missing", efm.display());
        eprintln!("SKIPPED {model}: {} not found", efm.display());
        return;
    }
    let refs = refs_dir().join(model);
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(refs.join("refs.json")).unwrap()).unwrap();
    let m: Arc<Model> = Model::load(&efm).unwrap();
    let mut inputs: Vec<Tensor> = Vec::new();
    for (i, &tid) in m.graph().inputs.iter().enumerate() {
        let name = &m.graph().tensors[tid].name;
        let entry = j["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{model}: no reference for input {name}"));
        let t = read_npy(&refs.join(entry["file"].as_str().unwrap()));
        assert_eq!(m.input_index(name), Some(i));
        inputs.push(t);
    }
    let mut s = Session::new(m.clone(), SessionOptions::with_threads(2)).unwrap();
    let outs = s.run_tensors(&inputs).unwrap();
    for (o, &tid) in m.graph().outputs.iter().enumerate() {
        let name = &m.graph().tensors[tid].name;
        let entry = j["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{model}: no reference for output {name}"));
        let want = read_npy(&refs.join(entry["file"].as_str().unwrap()));
        assert_eq!(outs[o].dtype, DType::F32, "{model} output {name}");
        let got = outs[o].as_slice::<f32>().unwrap();
        let want = want.as_slice::<f32>().unwrap();
        assert_eq!(got.len(), want.len(), "{model} output {name} length");
        let d = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, |m, v| if v.is_nan() { f32::NAN } else { m.max(v) });
        let r = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let bound = tol * r.max(1.0);
        eprintln!("{model} {name}: max |diff| {d:.3e}, bound {bound:.3e}");
        assert!(
            d <= bound,
            "{model} output {name}: max |diff| {d:e} exceeds {bound:e}"
        );
    }
}

#[test]
fn precompiled_models_match_references() {
    let Some(dir) = std::env::var_os("EDGEFUSE_EFM_DIR").map(PathBuf::from) else {
        assert!(
            !required(),
            "EDGEFUSE_REQUIRE_EFM=1 but EDGEFUSE_EFM_DIR is not set"
        );
        eprintln!("SKIPPED: EDGEFUSE_EFM_DIR not set (scripts/test-aarch64.sh sets it)");
        return;
    };
    if !refs_dir().exists() {
        assert!(!required(), "{} missing", refs_dir().display());
        eprintln!("SKIPPED: {} not found", refs_dir().display());
        return;
    }
    eprintln!(
        "arch {}: running .efm files from {}",
        std::env::consts::ARCH,
        dir.display()
    );
    for &(model, tol) in MODELS {
        check(&dir, model, tol);
    }
}

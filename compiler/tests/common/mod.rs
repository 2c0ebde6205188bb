//! Shared helpers of the importer tests: locating the reference models, reading their refs,
//! running an imported module node by node on the CPU kernels; `proto` builds ONNX models in memory.

#![allow(dead_code)]

pub mod proto;

use std::path::{Path, PathBuf};

use edgefuse_compiler::onnx::eval;
use edgefuse_compiler::Module;
use edgefuse_runtime::{DType, Tensor};

/// `../shared/models` from the workspace root, or None (with a message) when it is missing and
/// EDGEFUSE_REQUIRE_SHARED is not set.
pub fn models_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("EDGEFUSE_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!("{} is missing and EDGEFUSE_REQUIRE_SHARED=1", dir.display());
    }
    eprintln!(
        "skipped: {} is missing (set EDGEFUSE_REQUIRE_SHARED=1 to fail instead)",
        dir.display()
    );
    None
}

pub struct RefIo {
    pub name: String,
    pub file: PathBuf,
    pub shape: Vec<usize>,
    pub dtype: String,
}

pub struct Refs {
    pub inputs: Vec<RefIo>,
    pub outputs: Vec<RefIo>,
}

pub fn read_refs(models: &Path, model: &str) -> Refs {
    let dir = models.join("refs").join(model);
    let text = std::fs::read_to_string(dir.join("refs.json")).expect("refs.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("refs.json parses");
    let list = |key: &str| -> Vec<RefIo> {
        v[key]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| RefIo {
                name: e["name"].as_str().unwrap().to_string(),
                file: dir.join(e["file"].as_str().unwrap()),
                shape: e["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect(),
                dtype: e["dtype"].as_str().unwrap().to_string(),
            })
            .collect()
    };
    Refs {
        inputs: list("inputs"),
        outputs: list("outputs"),
    }
}

pub fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).expect("npy file");
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = npy.dtype().descr();
    match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" => Tensor::from_vec(&shape, npy.into_vec::<f32>().unwrap()).unwrap(),
        "<i8" => Tensor::from_vec(&shape, npy.into_vec::<i64>().unwrap()).unwrap(),
        "<i4" => Tensor::from_vec(&shape, npy.into_vec::<i32>().unwrap()).unwrap(),
        other => panic!("{}: unexpected npy dtype {other}", path.display()),
    }
}

/// Runs the module's nodes in order with the CPU kernels; returns the graph outputs.
pub fn run(m: &Module, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let g = &m.graph;
    let mut env: Vec<Option<Tensor>> = m.consts.clone();
    for (&id, t) in g.inputs.iter().zip(inputs) {
        env[id] = Some(t.clone());
    }
    for (k, node) in g.nodes.iter().enumerate() {
        let ins: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|&i| env[i].as_ref().expect("input computed"))
            .collect();
        let outs = eval(&node.op, &ins)
            .map_err(|e| format!("node #{k} \"{}\" {}: {e}", node.name, node.op.name()))?;
        for (&o, t) in node.outputs.iter().zip(outs) {
            env[o] = Some(t);
        }
    }
    Ok(g.outputs.iter().map(|&o| env[o].clone().unwrap()).collect())
}

/// Largest |a - b| and the tolerance 1e-4·max(1, max|b|).
pub fn compare(got: &Tensor, want: &Tensor) -> (f32, f32) {
    assert_eq!(got.shape, want.shape, "shape");
    let (a, b) = (got.to_f32_vec().unwrap(), want.to_f32_vec().unwrap());
    let maxref = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| {
        if x.is_nan() || y.is_nan() {
            f32::INFINITY
        } else {
            m.max((x - y).abs())
        }
    });
    (diff, 1e-4 * maxref.max(1.0))
}

pub fn dtype_of(s: &str) -> DType {
    match s {
        "float32" => DType::F32,
        "int64" => DType::I64,
        "int32" => DType::I32,
        other => panic!("unexpected dtype {other}"),
    }
}

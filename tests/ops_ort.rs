//! Operators against onnxruntime: the small models in `tests/ops/<family>/`, with inputs and
//! onnxruntime's outputs in `tests/ops/<family>.json` (made by `tests/ops/gen.py`). Each model is
//! compiled twice — with the rewrite rules and without (`no_fuse`) — and each file run on one
//! thread and on two; every output must be within `atol + rtol·|want|` of onnxruntime's (integer
//! and boolean outputs exactly, NaN where NaN). A case with `error` must be refused — by the
//! compiler, the loader or the CPU session's build; in the `refused` family by the compiler
//! itself — with a message naming it. A case with `fused` names ops the compile with the rules
//! must hold, and that compile's tolerances.
//! Needs nothing outside the repository.

#![cfg(feature = "compiler")]

use std::path::{Path, PathBuf};

use edgefuse_compiler::{compile_onnx, CompileOptions};
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{DType, Model, Tensor};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ops")
}

fn dtype(s: &str) -> DType {
    match s {
        "f32" => DType::F32,
        "i64" => DType::I64,
        "i32" => DType::I32,
        "u8" => DType::U8,
        "i8" => DType::I8,
        "bool" => DType::Bool,
        _ => panic!("dtype {s}"),
    }
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let hex = v["hex"].as_str().unwrap().as_bytes();
    let bytes: Vec<u8> = hex
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect();
    Tensor::from_bytes(dtype(v["dtype"].as_str().unwrap()), &shape, &bytes).unwrap()
}

/// The first element out of tolerance, described; None when all agree.
fn differs(got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> Option<String> {
    if got.dtype != want.dtype || got.shape != want.shape {
        return Some(format!(
            "{:?} {:?}, onnxruntime gives {:?} {:?}",
            got.dtype, got.shape, want.dtype, want.shape
        ));
    }
    let values = |t: &Tensor| -> Vec<f64> {
        match t.dtype {
            DType::F32 => t
                .as_slice::<f32>()
                .unwrap()
                .iter()
                .map(|&v| v as f64)
                .collect(),
            _ => t.to_i64_vec().unwrap().iter().map(|&v| v as f64).collect(),
        }
    };
    let exact = got.dtype != DType::F32;
    let (g, w) = (values(got), values(want));
    g.iter().zip(&w).enumerate().find_map(|(i, (&g, &w))| {
        let ok = if exact {
            g == w
        } else if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        (!ok).then(|| format!("[{i}] = {g}, onnxruntime {w}"))
    })
}

fn run_case(c: &Value) -> Vec<String> {
    let name = c["name"].as_str().unwrap();
    let file = c["model"].as_str().unwrap();
    let path = dir().join(file);
    let compiler_must_refuse = file.starts_with("refused/");
    let mut failures = Vec::new();
    for no_fuse in [false, true] {
        let how = if no_fuse { "unfused" } else { "fused" };
        let opts = CompileOptions {
            no_fuse,
            ..Default::default()
        };
        let compiled = std::panic::catch_unwind(|| compile_onnx(&path, &opts));
        let result = match compiled {
            Err(_) => {
                failures.push(format!("{name} ({how}): the compiler panicked"));
                continue;
            }
            Ok(r) => r.map_err(|e| format!("{e:#}")).and_then(|(bytes, _)| {
                Model::from_bytes(&bytes).map_err(|e| format!("loading: {e}"))
            }),
        };
        if let Some(want) = c["error"].as_str() {
            // A refusal may come from the compiler, the loader or the CPU backend's build; the
            // `refused` family's from the compiler, so that no file is written that cannot run.
            if compiler_must_refuse && result.is_ok() {
                failures.push(format!(
                    "{name} ({how}): compiled; the compiler should refuse it naming {want:?}"
                ));
                continue;
            }
            let result = result.and_then(|m| {
                Session::new(m, SessionOptions::with_threads(1)).map_err(|e| e.to_string())
            });
            match result {
                Ok(_) => failures.push(format!(
                    "{name} ({how}): compiled; expected an error naming {want:?}"
                )),
                Err(e) if !e.contains(want) => failures.push(format!(
                    "{name} ({how}): error {e:?} does not name {want:?}"
                )),
                Err(_) => {}
            }
            continue;
        }
        let model = match result {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name} ({how}): {e}"));
                continue;
            }
        };
        let inputs: Vec<Tensor> = c["inputs"].as_array().unwrap().iter().map(tensor).collect();
        let wants: Vec<(String, Tensor)> = c["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["name"].as_str().unwrap().to_string(), tensor(o)))
            .collect();
        let (mut atol, mut rtol) = (c["atol"].as_f64().unwrap(), c["rtol"].as_f64().unwrap());
        // What the rewrite rules must make of the model: these ops, and these tolerances.
        let fused = &c["fused"];
        if !no_fuse && fused.is_object() {
            let ops: Vec<&str> = model.graph().nodes.iter().map(|n| n.op.name()).collect();
            for want in fused["ops"].as_array().into_iter().flatten() {
                let want = want.as_str().unwrap();
                if !ops.contains(&want) {
                    failures.push(format!("{name} ({how}): no {want} among {ops:?}"));
                }
            }
            atol = fused["atol"].as_f64().unwrap_or(atol);
            rtol = fused["rtol"].as_f64().unwrap_or(rtol);
        }
        for threads in [1, 2] {
            let got = std::panic::catch_unwind(|| {
                let mut s = Session::new(model.clone(), SessionOptions::with_threads(threads))?;
                s.run_tensors(&inputs)
            });
            let got = match got {
                Err(_) => {
                    failures.push(format!("{name} ({how}, {threads}T): panicked"));
                    continue;
                }
                Ok(Err(e)) => {
                    failures.push(format!("{name} ({how}, {threads}T): {e}"));
                    continue;
                }
                Ok(Ok(g)) => g,
            };
            for ((out, want), got) in wants.iter().zip(&got) {
                if let Some(d) = differs(got, want, atol, rtol) {
                    failures.push(format!("{name} ({how}, {threads}T) {out}: {d}"));
                }
            }
        }
    }
    failures
}

#[test]
fn operators_match_onnxruntime() {
    let mut families: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    families.sort();
    assert!(!families.is_empty(), "no case files in {}", dir().display());
    let only = std::env::var("OPS_CASE").ok();
    let (mut count, mut failures) = (0, Vec::new());
    for f in &families {
        let root: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for c in root["cases"].as_array().unwrap() {
            if only
                .as_deref()
                .is_some_and(|o| !c["name"].as_str().unwrap().contains(o))
            {
                continue;
            }
            count += 1;
            failures.extend(run_case(c));
        }
    }
    eprintln!("{count} cases from {} files", families.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

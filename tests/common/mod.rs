//! Shared test support: locating `../shared`, the reference cases, compiling models once.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One reference model: its file, and the refs directory with inputs/outputs from onnxruntime.
pub struct Case {
    pub model: &'static str,
    /// Tolerance factor: |got - ref| ≤ tol · max(1, max|ref|).
    pub tol: f32,
}

/// The golden table: every ONNX model in ../shared/models.
pub const CASES: &[Case] = &[
    Case {
        model: "seed_cnn_mnist",
        tol: 1e-4,
    },
    Case {
        model: "seed_cnn_fashion",
        tol: 1e-4,
    },
    Case {
        model: "seed_lstm_textgen",
        tol: 1e-4,
    },
    Case {
        model: "efficientnet_lite0",
        tol: 1e-4,
    },
    // Executed in int8 (QConv/QAdd/QPool) while the refs simulate it in f32: requantization
    // rounds differently now and then, and one step of a logit (scale 0.099) moves the
    // softmax by several of its 1/256 output steps. Measured 0.027; bound 12 steps.
    Case {
        model: "mobilenet_v2_int8_qdq",
        tol: 0.047,
    },
    Case {
        model: "silero_vad_16k_sequence",
        tol: 1e-4,
    },
    Case {
        model: "ddddocr_crnn",
        tol: 1e-4,
    },
];

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/models`, or None (after saying so) when absent. With EDGEFUSE_REQUIRE_SHARED=1
/// a missing directory fails the test instead.
pub fn models_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EDGEFUSE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"))
        .join("models");
    if dir.join("MANIFEST.md").exists() {
        return Some(dir);
    }
    if std::env::var("EDGEFUSE_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!(
            "EDGEFUSE_REQUIRE_SHARED=1 but {} does not exist",
            dir.display()
        );
    }
    eprintln!("SKIPPED: {} not found (reference models absent); set EDGEFUSE_REQUIRE_SHARED=1 to fail instead", dir.display());
    None
}

pub fn edgefuse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgefuse"))
}

/// Per-run scratch directory under target/, shared by the tests of one binary.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = repo_root()
            .join("target")
            .join("test-scratch")
            .join(format!("{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Input names, files and shapes from refs.json.
pub struct Refs {
    pub dir: PathBuf,
    pub inputs: Vec<(String, PathBuf, Vec<usize>)>,
    pub outputs: Vec<(String, PathBuf, Vec<usize>)>,
}

impl Refs {
    /// `edgefuse run EFM --output-dir OUT` with every reference input as `--input NAME=FILE`.
    pub fn run_cmd(&self, efm: &Path, out_dir: &Path) -> Command {
        let mut cmd = edgefuse();
        cmd.arg("run").arg(efm).arg("--output-dir").arg(out_dir);
        for (name, file, _) in &self.inputs {
            cmd.arg("--input").arg(format!("{name}={}", file.display()));
        }
        cmd
    }
}

pub fn refs(models: &Path, model: &str) -> Refs {
    let dir = models.join("refs").join(model);
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("refs.json")).unwrap()).unwrap();
    let list = |k: &str| -> Vec<(String, PathBuf, Vec<usize>)> {
        j[k].as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let shape = e["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect();
                (
                    e["name"].as_str().unwrap().to_string(),
                    dir.join(e["file"].as_str().unwrap()),
                    shape,
                )
            })
            .collect()
    };
    Refs {
        inputs: list("inputs"),
        outputs: list("outputs"),
        dir,
    }
}

/// Compiles `model` (fp32) through the CLI once per test binary; returns the `.efm` path.
pub fn compiled(models: &Path, model: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = scratch_dir().join(format!("{model}.efm"));
    if out.exists() {
        return out;
    }
    let r = refs(models, model);
    let mut cmd = edgefuse();
    cmd.arg("compile")
        .arg(models.join(format!("{model}.onnx")))
        .arg("-o")
        .arg(&out);
    for (name, _, shape) in &r.inputs {
        let s: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        cmd.arg("--input").arg(format!("{name}={}", s.join("x")));
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "compile {model} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Max |a-b| and max |b|.
pub fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, |m, v| {
            if v.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(v)
            }
        });
    let r = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    (d, r)
}

/// `.efm` bytes holding `json` as plain metadata (section kind 1) and `weights` as they are:
/// the layout and checksums of `edgefuse_runtime::format::write`, but any metadata (weight
/// references included) and no inflation: for tests that mutate what the metadata says.
pub fn plain_efm(json: &[u8], weights: &[u8]) -> Vec<u8> {
    let align = |v: usize| v.div_ceil(64) * 64;
    let (moff, woff) = (128, align(128 + json.len()));
    let total = align(woff + weights.len());
    let mut b = vec![0u8; total];
    b[..8].copy_from_slice(edgefuse_runtime::format::MAGIC);
    b[8..10].copy_from_slice(&edgefuse_runtime::format::VERSION_MAJOR.to_le_bytes());
    b[10..12].copy_from_slice(&edgefuse_runtime::format::VERSION_MINOR.to_le_bytes());
    b[12..16].copy_from_slice(&2u32.to_le_bytes());
    b[20..28].copy_from_slice(&(total as u64).to_le_bytes());
    for (i, (kind, off, bytes)) in [
        (edgefuse_runtime::format::SECTION_META, moff, json),
        (edgefuse_runtime::format::SECTION_WEIGHTS, woff, weights),
    ]
    .into_iter()
    .enumerate()
    {
        let e = 64 + 32 * i;
        b[e..e + 4].copy_from_slice(&kind.to_le_bytes());
        b[e + 8..e + 16].copy_from_slice(&(off as u64).to_le_bytes());
        b[e + 16..e + 24].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        b[e + 24..e + 28].copy_from_slice(&crc32fast::hash(bytes).to_le_bytes());
        b[off..off + bytes.len()].copy_from_slice(bytes);
    }
    let crc = crc32fast::hash(&b[..128]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

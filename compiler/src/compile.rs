//! The compile driver: import → passes → write `.efm`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::format::{self, Meta, Provenance};
use sha2::{Digest, Sha256};

use crate::Module;

/// Numeric precision of the compiled weights and kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Int8,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" | "f32" => Ok(Precision::Fp32),
            "fp16" | "f16" => Ok(Precision::Fp16),
            "int8" | "i8" => Ok(Precision::Int8),
            _ => Err(format!(
                "unknown precision \"{s}\" (expected fp32, fp16 or int8)"
            )),
        }
    }
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

/// Whether this build can compile to `p`.
pub fn available(p: Precision) -> bool {
    p == Precision::Fp32
}

/// Everything `edgefuse compile` can be asked for.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    pub precision: Precision,
    /// Static shapes for inputs with symbolic dimensions: (name, shape).
    pub input_shapes: Vec<(String, Vec<usize>)>,
    pub labels: Option<Vec<String>>,
    /// Input preprocessing for camera frames (`--preprocess`), checked against the input.
    pub preprocess: Option<edgefuse_runtime::preprocess::PreprocessSpec>,
    /// Skip the rewrite rules (fusion); for debugging the importer.
    pub no_fuse: bool,
}

/// What a compile produced, for the summary the CLI prints.
#[derive(Debug, Clone)]
pub struct CompileReport {
    pub nodes: usize,
    pub constants: usize,
    pub weight_bytes: usize,
    pub file_bytes: usize,
}

/// Compiles an ONNX model into `.efm` bytes.
pub fn compile_onnx(path: &Path, opts: &CompileOptions) -> Result<(Vec<u8>, CompileReport)> {
    if !available(opts.precision) {
        bail!(
            "--precision {} is not available yet: this build compiles fp32 only",
            opts.precision.name()
        );
    }
    let source = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut module = crate::onnx::import_onnx(path, &opts.input_shapes)?;
    let rules_fired = if opts.no_fuse {
        Vec::new()
    } else {
        crate::passes::optimize(&mut module, &crate::passes::rules())?
    };
    let sha = Sha256::digest(&source);
    let meta = Meta {
        graph: module.graph.clone(),
        provenance: Provenance {
            source: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            source_sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
            compiler: format!("edgefuse {}", env!("CARGO_PKG_VERSION")),
            precision: opts.precision.name().into(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            rules_fired,
        },
        preprocess: opts.preprocess.clone(),
        labels: opts.labels.clone(),
    };
    let bytes = write_module(&module, meta)?;
    let report = CompileReport {
        nodes: module.graph.nodes.len(),
        constants: module.consts.iter().filter(|c| c.is_some()).count(),
        weight_bytes: module
            .consts
            .iter()
            .flatten()
            .map(|t| t.bytes().len())
            .sum(),
        file_bytes: bytes.len(),
    };
    Ok((bytes, report))
}

/// Serialises a module with the given metadata (its `graph` is replaced by the module's).
pub fn write_module(module: &Module, mut meta: Meta) -> Result<Vec<u8>> {
    meta.graph = module.graph.clone();
    let consts: Vec<_> = module.consts.iter().map(|c| c.as_ref()).collect();
    Ok(format::write(meta, &consts)?)
}

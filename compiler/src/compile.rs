//! The compile driver: import → passes → write `.efm`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::format::{self, Calibration, Meta, Provenance};
use edgefuse_runtime::Tensor;
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

/// Whether this build can compile to `p` (int8 also needs calibration data).
pub fn available(_p: Precision) -> bool {
    true
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
    /// Calibration (and validation) for `Precision::Int8`.
    pub quant: Option<crate::quant::QuantOptions>,
}

/// What a compile produced, for the summary the CLI prints.
#[derive(Debug, Clone)]
pub struct CompileReport {
    pub nodes: usize,
    pub constants: usize,
    pub weight_bytes: usize,
    pub file_bytes: usize,
    /// Weight bytes of the fused fp32 module (for comparison).
    pub fp32_weight_bytes: usize,
    /// fp16: how many weight tensors are stored in half precision.
    pub f16_weights: usize,
    /// int8: the calibration summary and the per-layer error table.
    pub calibration: Option<Calibration>,
    pub layers: Vec<crate::quant::LayerRow>,
}

/// Compiles an ONNX model into `.efm` bytes.
pub fn compile_onnx(path: &Path, opts: &CompileOptions) -> Result<(Vec<u8>, CompileReport)> {
    let source = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let module = crate::onnx::import_onnx(path, &opts.input_shapes)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    compile_module(module, &name, &source, opts)
}

/// Compiles an imported module into `.efm` bytes: rewrite rules, quantization or half
/// weights as `opts` asks, then the file, whose provenance names `source_name` and the sha256
/// of `source` (the model file's bytes).
pub fn compile_module(
    mut module: Module,
    source_name: &str,
    source: &[u8],
    opts: &CompileOptions,
) -> Result<(Vec<u8>, CompileReport)> {
    // Names from the ONNX file reach terminals (this compile's table, `inspect`, `run`):
    // control characters in them are written as escapes from here on.
    for name in (module.graph.tensors.iter_mut().map(|t| &mut t.name))
        .chain(module.graph.nodes.iter_mut().map(|n| &mut n.name))
    {
        if let std::borrow::Cow::Owned(p) = format::printable(name) {
            *name = p;
        }
    }
    let all_rules = crate::passes::rules();
    // Quantization inserts QuantizeLinear/DequantizeLinear around plain Conv inputs, so a Conv
    // does not take its residual Add until the int8 rules have run.
    let rules: Vec<crate::passes::Rule> = if opts.precision == Precision::Int8 {
        crate::passes::rules()
            .into_iter()
            // … and an LSTM keeps its own W, which the int8 rules quantize.
            .filter(|r| {
                r.name != "fold_residual_add_into_conv" && r.name != "fold_embedding_into_lstm"
            })
            .collect()
    } else {
        crate::passes::rules()
    };
    let mut rules_fired = if opts.no_fuse {
        Vec::new()
    } else {
        crate::passes::optimize(&mut module, &rules)?
    };
    let fp32_weight_bytes = module
        .consts
        .iter()
        .flatten()
        .map(|t| t.bytes().len())
        .sum();
    let mut calibration = None;
    let mut layers = Vec::new();
    if opts.precision == Precision::Int8 {
        let Some(q) = &opts.quant else {
            bail!("--precision int8 needs calibration data: give --calibrate DATA");
        };
        let finish = |mut m: Module| -> Result<Module> {
            if !opts.no_fuse {
                crate::passes::optimize(&mut m, &rules)?;
            }
            Ok(m)
        };
        let quantized = crate::quant::quantize(&module, q, &finish)?;
        module = quantized.module;
        if !opts.no_fuse {
            for (rule, n) in crate::passes::optimize(&mut module, &all_rules)? {
                match rules_fired.iter_mut().find(|(r, _)| *r == rule) {
                    Some(e) => e.1 += n,
                    None => rules_fired.push((rule, n)),
                }
            }
        }
        calibration = Some(quantized.summary);
        layers = quantized.layers;
    }
    module.copy_outputs_aliasing_inputs();
    let (consts, f16_weights): (Vec<Option<Tensor>>, usize) = match opts.precision {
        Precision::Fp16 => crate::fp16::half_weights(&module),
        _ => (module.consts.clone(), 0),
    };
    let sha = Sha256::digest(source);
    let mut meta = Meta {
        graph: module.graph.clone(),
        provenance: Provenance {
            source: source_name.to_string(),
            source_sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
            compiler: format!("edgefuse {}", env!("CARGO_PKG_VERSION")),
            precision: opts.precision.name().into(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            rules_fired,
            calibration: calibration.clone(),
        },
        preprocess: opts.preprocess.clone(),
        labels: opts.labels.clone(),
    };
    // The rest of the text: labels, the source's file name.
    meta.make_printable();
    let refs: Vec<_> = consts.iter().map(|c| c.as_ref()).collect();
    let bytes = format::write(meta, &refs)?;
    let report = CompileReport {
        nodes: module.graph.nodes.len(),
        constants: consts.iter().filter(|c| c.is_some()).count(),
        weight_bytes: consts.iter().flatten().map(|t| t.bytes().len()).sum(),
        file_bytes: bytes.len(),
        fp32_weight_bytes,
        f16_weights,
        calibration,
        layers,
    };
    Ok((bytes, report))
}

/// Serialises a module with the given metadata (its `graph` is replaced by the module's).
pub fn write_module(module: &Module, mut meta: Meta) -> Result<Vec<u8>> {
    meta.graph = module.graph.clone();
    let consts: Vec<_> = module.consts.iter().map(|c| c.as_ref()).collect();
    Ok(format::write(meta, &consts)?)
}

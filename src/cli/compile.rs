//! `edgefuse compile`: ONNX → `.efm`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use edgefuse_compiler::{CompileOptions, Precision};

#[derive(clap::Args)]
#[command(
    about = "Compile an ONNX model into a .efm file",
    long_about = "Compile an ONNX model into a .efm file.\n\n\
    Shape subgraphs are folded, every tensor gets a static shape, and the result is checked by\n\
    loading it back. Inputs with symbolic dimensions need --input (a symbolic batch defaults to 1).\n\n\
    Example: edgefuse compile ddddocr.onnx -o ocr.efm --input input1=1x1x64x160"
)]
pub struct Args {
    /// The ONNX model.
    model: PathBuf,
    /// Where to write the compiled model.
    #[arg(short, long)]
    output: PathBuf,
    /// Weight and compute precision (default: fp32, or the board's default with --board).
    #[arg(long)]
    precision: Option<Precision>,
    /// Target board (see `edgefuse boards`): checks the model fits and takes the board's defaults.
    #[arg(long)]
    board: Option<String>,
    /// Static shape of an input, NAME=1x3x224x224 (repeatable).
    #[arg(long = "input", value_name = "NAME=SHAPE", value_parser = parse_input)]
    inputs: Vec<(String, Vec<usize>)>,
    /// A text file of class labels, one per line, stored in the model.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Camera preprocessing recorded for `classify`: a preset (imagenet, efficientnet_lite0,
    /// mobilenet, inception, mnist) or KEY=VALUE,... e.g. resize=256,crop=224,mean=127,std=128
    /// (keys: resize, crop, mean, std, scale, pad, fit=crop|letterbox|stretch, interp=bilinear|area,
    /// color=rgb|bgr|gray, layout=nchw|nhwc; mean/std per channel as 123.7/116.3/103.5).
    #[arg(long, value_name = "SPEC", value_parser = parse_preprocess)]
    preprocess: Option<edgefuse_runtime::preprocess::PreprocessSpec>,
    /// Skip fusion and the other rewrite rules (for debugging).
    #[arg(long)]
    no_fuse: bool,
}

fn parse_preprocess(s: &str) -> Result<edgefuse_runtime::preprocess::PreprocessSpec, String> {
    edgefuse_runtime::preprocess::PreprocessSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_input(s: &str) -> Result<(String, Vec<usize>), String> {
    let (n, v) = super::split_assignment(s, "SHAPE")?;
    Ok((n, super::parse_shape(&v)?))
}

pub fn run(a: Args) -> Result<()> {
    let labels = match &a.labels {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading labels {}", p.display()))?
                .lines()
                .map(|l| l.trim_end().to_string())
                .collect(),
        ),
        None => None,
    };
    let board = a
        .board
        .as_deref()
        .map(edgefuse_runtime::board::Board::find)
        .transpose()?;
    let precision = match (a.precision, &board) {
        (Some(p), _) => p,
        (None, Some(b)) => {
            let p: Precision = b.defaults.precision.parse().map_err(anyhow::Error::msg)?;
            if edgefuse_compiler::compile::available(p) {
                p
            } else {
                println!("note: {}'s default precision {} is not available in this build yet; compiling fp32", b.name, p.name());
                Precision::Fp32
            }
        }
        (None, None) => Precision::Fp32,
    };
    let opts = CompileOptions {
        precision,
        input_shapes: a.inputs,
        labels,
        preprocess: a.preprocess.clone(),
        no_fuse: a.no_fuse,
    };
    let start = std::time::Instant::now();
    let (bytes, report) = edgefuse_compiler::compile_onnx(&a.model, &opts)
        .with_context(|| format!("compiling {}", a.model.display()))?;
    // Check the result loads (and fits the board) before it replaces anything.
    let model = edgefuse_runtime::Model::from_bytes(&bytes)
        .context("the compiled model does not load back (compiler bug)")?;
    if let Some(b) = &board {
        for note in b
            .check(&model)
            .with_context(|| format!("--board {}", b.name))?
        {
            println!("{note}");
        }
    }
    if let Some(spec) = &a.preprocess {
        let g = model.graph();
        if g.inputs.len() != 1 {
            anyhow::bail!("--preprocess: the model has {} inputs; preprocessing feeds a model with one image input", g.inputs.len());
        }
        edgefuse_runtime::preprocess::Target::for_input(spec, &g.tensors[g.inputs[0]])
            .context("--preprocess does not fit the model input")?;
    }
    edgefuse_runtime::format::write_file(&a.output, &bytes)?;
    let src = std::fs::metadata(&a.model).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} → {}: {} nodes, {} constants, {:.2} MB weights, file {:.2} MB ({:.2}× the ONNX), {} in {:.2} s",
        a.model.display(),
        a.output.display(),
        report.nodes,
        report.constants,
        report.weight_bytes as f64 / 1e6,
        report.file_bytes as f64 / 1e6,
        report.file_bytes as f64 / src.max(1) as f64,
        opts.precision.name(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

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
    Example: edgefuse compile ddddocr.onnx -o ocr.efm --input input1=1x1x64x160\n\n\
    int8: edgefuse compile cnn.onnx -o cnn.efm --precision int8 --calibrate calib-images-idx3-ubyte.gz \\\n\
    \x20     --validate t10k-images-idx3-ubyte.gz --max-drop 0.3 --report cnn.html\n\
    Calibration data is IDX (MNIST format, .gz or not), .npy batches (first axis counts samples),\n\
    or a folder of them; NAME=DATA per input for multi-input models."
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
    /// int8 calibration data: IDX, .npy, or a folder of them; NAME=DATA per input (repeatable).
    #[arg(long, value_name = "DATA")]
    calibrate: Vec<String>,
    /// How activation ranges are chosen from the calibration data.
    #[arg(long, value_enum, default_value_t = CalibrationMethod::Minmax)]
    calibration: CalibrationMethod,
    /// The percentile kept by --calibration percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Labelled data to measure top-1 before and after quantization (IDX images with their labels
    /// file beside them, or .npy inputs with --validate-labels).
    #[arg(long, value_name = "DATA")]
    validate: Option<String>,
    /// Labels for --validate (IDX, .npy or text, one class index per sample).
    #[arg(long, value_name = "FILE")]
    validate_labels: Option<PathBuf>,
    /// Largest top-1 drop allowed, in points: the most sensitive layers go back to fp32 until the
    /// drop fits (needs --validate).
    #[arg(long, value_name = "POINTS")]
    max_drop: Option<f64>,
    /// Write a self-contained HTML page with the per-layer quantization error.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CalibrationMethod {
    Minmax,
    Percentile,
    Entropy,
    /// The range with the least squared error (clipping plus rounding) on the histogram.
    Mse,
}

fn parse_preprocess(s: &str) -> Result<edgefuse_runtime::preprocess::PreprocessSpec, String> {
    edgefuse_runtime::preprocess::PreprocessSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_input(s: &str) -> Result<(String, Vec<usize>), String> {
    let (n, v) = super::split_assignment(s, "SHAPE")?;
    Ok((n, super::parse_shape(&v)?))
}

pub fn run(a: Args) -> Result<()> {
    super::replaceable(&a.output, edgefuse_runtime::format::MAGIC, "-o")?;
    if let Some(r) = &a.report {
        super::replaceable(r, b"<!DOCTYPE html>", "--report")?;
    }
    let labels = a.labels.as_deref().map(super::read_labels).transpose()?;
    let board = a
        .board
        .as_deref()
        .map(edgefuse_runtime::board::Board::find)
        .transpose()?;
    let precision = match (a.precision, &board) {
        (Some(p), _) => p,
        (None, Some(b)) => {
            let p: Precision = b.defaults.precision.parse().map_err(anyhow::Error::msg)?;
            if p == Precision::Int8 && a.calibrate.is_empty() {
                println!(
                    "note: {}'s default precision is int8, which needs --calibrate DATA; compiling fp32",
                    b.name
                );
                Precision::Fp32
            } else {
                p
            }
        }
        (None, None) => Precision::Fp32,
    };
    let quant = quant_options(&a, precision)?;
    let opts = CompileOptions {
        precision,
        input_shapes: a.inputs,
        labels,
        preprocess: a.preprocess.clone(),
        no_fuse: a.no_fuse,
        quant,
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
    if let (Some(path), Some(labels)) = (&a.labels, &model.meta().labels) {
        edgefuse_runtime::classify::check_labels(model.graph(), labels)
            .with_context(|| format!("--labels {}", path.display()))?;
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
    if report.f16_weights > 0 {
        println!(
            "fp16: {} weight tensors stored in half precision ({:.2} MB → {:.2} MB of weights)",
            report.f16_weights,
            report.fp32_weight_bytes as f64 / 1e6,
            report.weight_bytes as f64 / 1e6
        );
    }
    if let Some(cal) = &report.calibration {
        print_int8_summary(&report, cal);
        if let Some(path) = &a.report {
            let page = edgefuse_compiler::quant::report::html(
                &edgefuse_compiler::quant::report::PageInfo {
                    model: &a.model.display().to_string(),
                    onnx_bytes: src,
                    fp32_weight_bytes: report.fp32_weight_bytes as u64,
                    int8_bytes: report.file_bytes as u64,
                    seconds: start.elapsed().as_secs_f64(),
                },
                cal,
                &report.layers,
            );
            edgefuse_runtime::format::write_file(path, page.as_bytes())
                .with_context(|| format!("writing the report {}", path.display()))?;
            println!("report     {}", path.display());
        }
    }
    Ok(())
}

fn quant_options(
    a: &Args,
    precision: Precision,
) -> Result<Option<edgefuse_compiler::quant::QuantOptions>> {
    use edgefuse_compiler::quant::{Method, QuantOptions};
    if precision != Precision::Int8 {
        let stray = [
            (!a.calibrate.is_empty(), "--calibrate"),
            (a.validate.is_some(), "--validate"),
            (a.max_drop.is_some(), "--max-drop"),
            (a.report.is_some(), "--report"),
        ];
        if let Some((_, flag)) = stray.iter().find(|(set, _)| *set) {
            anyhow::bail!("{flag} only applies to --precision int8");
        }
        return Ok(None);
    }
    if a.calibrate.is_empty() {
        anyhow::bail!("--precision int8 needs calibration data: give --calibrate DATA");
    }
    if a.max_drop.is_some() && a.validate.is_none() {
        anyhow::bail!("--max-drop needs labelled data to measure the drop: give --validate DATA");
    }
    if !(a.percentile > 50.0 && a.percentile <= 100.0) {
        anyhow::bail!("--percentile {} is outside (50, 100]", a.percentile);
    }
    // NaN is refused too.
    if a.max_drop.is_some_and(|d| d.is_nan() || d < 0.0) {
        anyhow::bail!("--max-drop must be a number of points ≥ 0");
    }
    let method = match a.calibration {
        CalibrationMethod::Minmax => Method::MinMax,
        CalibrationMethod::Percentile => Method::Percentile(a.percentile),
        CalibrationMethod::Entropy => Method::Entropy,
        CalibrationMethod::Mse => Method::Mse,
    };
    let calibrate =
        crate::dataset::load_inputs(&a.calibrate, a.preprocess.as_ref()).context("--calibrate")?;
    let validate = a
        .validate
        .as_deref()
        .map(|v| crate::dataset::load_labelled(v, a.validate_labels.as_deref()))
        .transpose()
        .context("--validate")?;
    Ok(Some(QuantOptions {
        method,
        calibrate,
        validate,
        max_drop: a.max_drop,
        progress: true,
    }))
}

fn print_int8_summary(
    report: &edgefuse_compiler::CompileReport,
    cal: &edgefuse_runtime::format::Calibration,
) {
    println!(
        "int8: {} calibration, {} samples; {} of {} layers int8; weights {:.2} MB → {:.2} MB",
        cal.method,
        cal.samples,
        cal.layers_int8,
        cal.layers_total,
        report.fp32_weight_bytes as f64 / 1e6,
        report.weight_bytes as f64 / 1e6
    );
    if let (Some(m), Some(f), Some(q)) = (&cal.metric, cal.fp32, cal.int8) {
        println!(
            "{m} on {} validation samples: fp32 {f:.2}, int8 {q:.2} (drop {:.2} points{})",
            cal.validate_samples,
            f - q,
            cal.max_drop
                .map(|d| format!(", allowed {d}"))
                .unwrap_or_default()
        );
    }
    for (layer, why) in &cal.fallback {
        println!("kept fp32  {layer}: {why}");
    }
    println!(
        "{:<32} {:<10} {:<13} {:>9} {:>9} {:>10}",
        "layer", "op", "precision", "w SQNR", "out SQNR", "max |err|"
    );
    for r in &report.layers {
        let name: String = r.name.chars().take(32).collect();
        println!(
            "{name:<32} {:<10} {:<13} {:>9} {:>9.1} {:>10.3e}",
            r.op,
            r.precision,
            r.weight_sqnr_db
                .map(|d| format!("{d:.1}"))
                .unwrap_or_else(|| "–".into()),
            r.output_sqnr_db,
            r.max_abs_err
        );
    }
}

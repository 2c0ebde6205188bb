//! The seed document's MNIST CNN, end to end: compile the ONNX model, load the `.efm`, classify
//! the held-out digits from the IDX test set, and report accuracy and latency.
//!
//! ```text
//! cargo run --release --example mnist_cnn -- [MODEL.onnx|MODEL.efm] [IMAGES.idx3-ubyte.gz LABELS.idx1-ubyte.gz]
//! ```
//! Defaults: `../shared/models/seed_cnn_mnist.onnx` and `../shared/data/mnist/test-*`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{Model, Tensor};

/// Reads an IDX file (optionally gzipped): returns (dims, bytes).
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut data = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut data)
            .with_context(|| format!("gunzip {}", path.display()))?;
    } else {
        data = raw;
    }
    if data.len() < 4 || data[0] != 0 || data[1] != 0 || data[2] != 8 {
        bail!("{} is not an unsigned-byte IDX file", path.display());
    }
    let rank = data[3] as usize;
    let header = 4 + 4 * rank;
    if data.len() < header {
        bail!("{} is truncated", path.display());
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(data[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    if data.len() != header + dims.iter().product::<usize>() {
        bail!("{}: size does not match dims {dims:?}", path.display());
    }
    Ok((dims, data[header..].to_vec()))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let model_path = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| shared.join("models/seed_cnn_mnist.onnx"));
    let images = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| shared.join("data/mnist/test-images-idx3-ubyte.gz"));
    let labels = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| shared.join("data/mnist/test-labels-idx1-ubyte.gz"));

    let (dims, pixels) = read_idx(&images)?;
    let (_, truth) = read_idx(&labels)?;
    let (n, h, w) = (dims[0], dims[1], dims[2]);
    if truth.len() != n {
        bail!("{} images but {} labels", n, truth.len());
    }
    let batch = 1;
    let model = if model_path.extension().is_some_and(|e| e == "onnx") {
        let opts = edgefuse_compiler::CompileOptions {
            input_shapes: vec![("image".into(), vec![batch, 1, h, w])],
            ..Default::default()
        };
        let (bytes, report) = edgefuse_compiler::compile_onnx(&model_path, &opts)?;
        println!(
            "compiled {}: {} nodes, {:.2} MB",
            model_path.display(),
            report.nodes,
            report.file_bytes as f64 / 1e6
        );
        Model::from_bytes(&bytes)?
    } else {
        Model::load(&model_path)?
    };
    let mut session = Session::new(model, SessionOptions::default())?;
    let mut correct = 0;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let img: Vec<f32> = pixels[i * h * w..(i + 1) * h * w]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        let x = Tensor::from_vec(&[batch, 1, h, w], img)?;
        let t = Instant::now();
        session.set_input(0, x.view())?;
        session.run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let probs = session.output(0).typed::<f32>();
        let pred = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k)
            .unwrap_or(0);
        if pred == truth[i] as usize {
            correct += 1;
        }
        if i < 8 {
            println!(
                "digit #{i}: predicted {pred} (p = {:.3}), label {}",
                probs[pred], truth[i]
            );
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "accuracy {:.2} % on {n} digits; latency per digit median {:.3} ms, p90 {:.3} ms",
        100.0 * correct as f64 / n as f64,
        times[n / 2],
        times[n * 9 / 10]
    );
    Ok(())
}

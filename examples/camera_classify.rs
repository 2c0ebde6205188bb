//! Camera to label: compile EfficientNet-Lite0 with its preprocessing and the ImageNet labels,
//! then classify frames from a source. Without a camera it runs the whole path on the demo data
//! shipped in `examples/demo` (four photographs, then a recorded raw YUYV clip); with
//! `--source /dev/video0` (build with `--features v4l`) it reads the camera until Ctrl-C.
//!
//! ```text
//! cargo run --release --example camera_classify -- [--source SRC] [--model M.onnx|M.efm] [--frames N]
//! ```
//! Defaults: `../shared/models/efficientnet_lite0.onnx`, `../shared/data/imagenet_labels_1000.txt`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::capture::thread::{CaptureOptions, CaptureThread};
use edgefuse_runtime::classify::Classifier;
use edgefuse_runtime::cpu::SessionOptions;
use edgefuse_runtime::preprocess::PreprocessSpec;
use edgefuse_runtime::Model;

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = std::env::var_os("EDGEFUSE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    let (mut sources, mut model_path, mut frames) = (Vec::new(), None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--source" => sources.push(args.next().context("--source needs a value")?),
            "--model" => {
                model_path = Some(PathBuf::from(args.next().context("--model needs a value")?))
            }
            "--frames" => frames = Some(args.next().context("--frames needs a value")?.parse()?),
            other => bail!("unknown argument {other} (use --source SRC, --model M, --frames N)"),
        }
    }
    if sources.is_empty() {
        let demo = root.join("examples/demo");
        sources.push(demo.display().to_string());
        sources.push(format!("{}:192x144", demo.join("clip.yuyv").display()));
    }
    let model_path = model_path.unwrap_or_else(|| shared.join("models/efficientnet_lite0.onnx"));
    let labels_path = shared.join("data/imagenet_labels_1000.txt");
    let spec = PreprocessSpec::parse("efficientnet_lite0")?;

    let model = if model_path.extension().is_some_and(|e| e == "onnx") {
        let labels = std::fs::read_to_string(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?
            .lines()
            .map(str::to_string)
            .collect();
        let opts = edgefuse_compiler::CompileOptions {
            input_shapes: vec![("input".into(), vec![1, 3, 224, 224])],
            labels: Some(labels),
            preprocess: Some(spec),
            ..Default::default()
        };
        let t = Instant::now();
        let (bytes, report) = edgefuse_compiler::compile_onnx(&model_path, &opts)?;
        println!(
            "compiled {} ({} nodes, {:.1} MB) in {:.1} s",
            model_path.display(),
            report.nodes,
            report.file_bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        Model::from_bytes(&bytes)?
    } else {
        Model::load(&model_path)?
    };
    let mut classifier = Classifier::new(model, None, None, SessionOptions::default())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))?;

    for source in &sources {
        let src = edgefuse_runtime::capture::open(source)?;
        println!("\n{}", src.describe());
        let opts = CaptureOptions {
            max_frames: frames,
            ..Default::default()
        };
        let capture = CaptureThread::spawn(src, opts, stop.clone());
        let (start, mut n) = (Instant::now(), 0);
        while let Some(c) = capture.next() {
            let index = c.frame.index;
            match c.result.and_then(|()| classifier.classify(&c.frame, 3)) {
                Ok((top, t)) => {
                    n += 1;
                    let labels: Vec<String> = top
                        .iter()
                        .map(|t| format!("{} ({:.2})", t.label, t.score))
                        .collect();
                    println!(
                        "  frame {index}: {}   [capture {:.1} ms, preprocess {:.2} ms, infer {:.1} ms]",
                        labels.join(", "),
                        c.capture_ms,
                        t.preprocess,
                        t.infer
                    );
                }
                Err(e) => println!("  frame {index}: {e}"),
            }
            capture.recycle(c.frame);
        }
        println!("  {n} frames in {:.2} s", start.elapsed().as_secs_f64());
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

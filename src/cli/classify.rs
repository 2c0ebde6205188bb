//! `edgefuse classify`: frames from a camera, file or folder → the model's top-K labels, with
//! per-stage timings. Capture runs on its own thread, overlapping preprocessing and inference.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use edgefuse_runtime::capture::thread::{CaptureOptions, CaptureThread};
use edgefuse_runtime::classify::{Classifier, Timings, Top};
use edgefuse_runtime::preprocess::PreprocessSpec;
use edgefuse_runtime::Model;

use super::Backend;

#[derive(clap::Args)]
#[command(
    about = "Classify camera frames, images or recorded frames with a .efm model",
    long_about = "Classify frames with a .efm model: top-K labels per frame, timings per stage, frames per second.\n\n\
    Sources: /dev/videoN[:WxH][:FMT][@FPS] (V4L2, build feature `v4l`), an image file, a folder of\n\
    images, a raw frame file PATH[:FMT]:WxH (e.g. frames.yuyv:1920x1080; formats yuyv, uyvy, nv12,\n\
    mjpeg, rgb24, bgr24, grey), or synthetic[:WxH][:FMT]. Preprocessing and labels come from the\n\
    model (compile --preprocess/--labels) unless given here. Ctrl-C ends with a summary.\n\n\
    Example: edgefuse classify effnet.efm --source /dev/video0 --top 3"
)]
pub struct Args {
    /// The compiled model.
    model: PathBuf,
    /// Where frames come from.
    #[arg(long)]
    source: String,
    /// Labels per frame.
    #[arg(long, default_value_t = 5, value_parser = super::positive)]
    top: usize,
    /// One JSON object per frame on stdout (frame, source, top, timings_ms); summary on stderr.
    #[arg(long)]
    json: bool,
    /// Stop after N frames.
    #[arg(long, value_parser = super::positive)]
    frames: Option<usize>,
    /// Class labels, one per line (default: those stored in the model).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Preprocessing (default: the spec stored in the model); same syntax as compile --preprocess.
    #[arg(long, value_name = "SPEC")]
    preprocess: Option<String>,
    /// Start file sources again at their end (with --frames, for measuring rates).
    #[arg(long = "loop")]
    looping: bool,
    /// Write the first frame's model input to this .npy (to compare with `edgefuse run`).
    #[arg(long, value_name = "FILE.npy")]
    save_input: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// CPU threads for inference (default: the machine's cores, at most 8).
    #[arg(long, value_parser = super::positive)]
    threads: Option<usize>,
    /// CUDA precision: fp16 (tensor cores) or fp32 (exact); default fp16 exactly when the
    /// model's weights are stored as f16 (`compile --precision fp16`).
    #[arg(long, value_enum)]
    gpu_precision: Option<super::GpuPrecision>,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(path) = &a.save_input {
        super::replaceable(path, b"\x93NUMPY", "--save-input")?;
    }
    super::check_backend(a.backend)?;
    let model = Model::load(&a.model)?;
    let spec = a
        .preprocess
        .as_deref()
        .map(PreprocessSpec::parse)
        .transpose()
        .context("--preprocess")?;
    let labels = a.labels.as_deref().map(super::read_labels).transpose()?;
    let engine = super::open_session(model, a.backend, a.threads, a.gpu_precision)?;
    let mut classifier = Classifier::with_engine(engine, spec, labels)
        .with_context(|| format!("{}", a.model.display()))?;
    let source = edgefuse_runtime::capture::open(&a.source)?;
    let what = source.describe();
    if !a.json {
        println!("{what} → {}", a.model.display());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second Ctrl-C (or a handler already set by an embedding program) falls back to the default.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let opts = CaptureOptions {
        ring: 3,
        max_frames: a.frames.map(|n| n as u64),
        looping: a.looping,
    };
    let capture = CaptureThread::spawn(source, opts, stop.clone());

    let mut stats = Stats::default();
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    while let Some(c) = capture.next() {
        let index = c.frame.index;
        let result = c.result.and_then(|()| {
            let pre = classifier.preprocess(&c.frame)?;
            if stats.frames == 0 {
                if let Some(path) = &a.save_input {
                    crate::npy::write(path, classifier.input().view()).map_err(|e| {
                        edgefuse_runtime::Error::invalid(format!(
                            "--save-input {}: {e:#}",
                            path.display()
                        ))
                    })?;
                }
            }
            let infer = classifier.infer()?;
            Ok(Timings {
                capture: c.capture_ms,
                preprocess: pre,
                infer,
            })
        });
        capture.recycle(c.frame);
        match result {
            Ok(t) => {
                let top = classifier.top(a.top);
                stats.add(&t);
                if a.json {
                    writeln!(out, "{}", frame_json(index, &what, &top, &t))?;
                } else {
                    writeln!(out, "{}", frame_line(index, &top, &t))?;
                }
            }
            Err(e) => {
                stats.errors += 1;
                if a.json {
                    let doc =
                        serde_json::json!({"frame": index, "source": what, "error": e.to_string()});
                    writeln!(out, "{doc}")?;
                } else {
                    eprintln!("frame {index}: {e}");
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let interrupted = stop.load(Ordering::Relaxed);
    drop(capture);
    let summary = stats.summary(start.elapsed().as_secs_f64(), interrupted);
    if a.json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    if stats.frames == 0 && stats.errors > 0 {
        anyhow::bail!("--source {}: no frame could be classified", a.source);
    }
    Ok(())
}

fn frame_json(index: u64, source: &str, top: &[Top], t: &Timings) -> serde_json::Value {
    let top: Vec<serde_json::Value> = top
        .iter()
        .map(|c| serde_json::json!({"index": c.index, "label": c.label, "score": c.score}))
        .collect();
    serde_json::json!({
        "frame": index,
        "source": source,
        "top": top,
        "timings_ms": {"capture": t.capture, "preprocess": t.preprocess, "infer": t.infer},
    })
}

fn frame_line(index: u64, top: &[Top], t: &Timings) -> String {
    let labels: Vec<String> = top
        .iter()
        .map(|c| format!("{} {:.3}", c.label, c.score))
        .collect();
    format!(
        "frame {index:>4}: {:<60}  capture {:.2} ms, preprocess {:.2} ms, infer {:.2} ms",
        labels.join(" | "),
        t.capture,
        t.preprocess,
        t.infer
    )
}

#[derive(Default)]
struct Stats {
    frames: u64,
    errors: u64,
    capture: Vec<f64>,
    preprocess: Vec<f64>,
    infer: Vec<f64>,
}

impl Stats {
    fn add(&mut self, t: &Timings) {
        self.frames += 1;
        self.capture.push(t.capture);
        self.preprocess.push(t.preprocess);
        self.infer.push(t.infer);
    }

    fn summary(&mut self, secs: f64, interrupted: bool) -> String {
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        format!(
            "{}{} frames, {} errors in {:.2} s: {:.1} fps; median capture {:.2} ms, preprocess {:.2} ms, infer {:.2} ms",
            if interrupted { "interrupted: " } else { "" },
            self.frames,
            self.errors,
            secs,
            self.frames as f64 / secs.max(1e-9),
            median(&mut self.capture),
            median(&mut self.preprocess),
            median(&mut self.infer)
        )
    }
}

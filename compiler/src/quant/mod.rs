//! int8 post-training quantization: calibrate, insert QDQ, measure, guard the accuracy.
//!
//! - [`data`]: calibration/validation samples split to the model's input shapes.
//! - [`runner`]: runs a module on the CPU runtime with intermediate tensors exposed.
//! - [`calibrate`]: activation ranges (min/max, percentile, entropy/KL).
//! - [`qdq`]: which layers quantize, and the QuantizeLinear/DequantizeLinear pattern.
//! - [`bias`]: bias correction for the weight rounding.
//! - [`guard`]: the metric before/after, per-layer sensitivity, fallback to fp32.
//! - [`report`]: the per-layer error table and the HTML page.
//!
//! The driver: calibrate every activation the full quantization would touch, quantize every
//! layer, measure (per-layer SQNR against fp32; top-1 with `--validate`), and while the drop
//! exceeds `--max-drop` move the most sensitive layers back to fp32.

pub mod bias;
pub mod calibrate;
pub mod data;
pub mod guard;
pub mod qdq;
pub mod report;
pub mod runner;

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use edgefuse_runtime::format::Calibration;

pub use calibrate::Method;
pub use data::{Batch, Dataset, Sample};
pub use report::LayerRow;

use crate::Module;

/// Calibration samples the per-layer error table is measured on.
const REPORT_SAMPLES: usize = 8;

/// What `--precision int8` was asked for.
#[derive(Debug, Clone)]
pub struct QuantOptions {
    pub method: Method,
    pub calibrate: Vec<Batch>,
    pub validate: Option<Dataset>,
    /// Largest allowed top-1 drop, in points, with `validate`.
    pub max_drop: Option<f64>,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

/// The outcome: the quantized module (before the int8 execution rules), and what was measured.
pub struct Quantized {
    pub module: Module,
    pub summary: Calibration,
    pub layers: Vec<LayerRow>,
}

/// Quantizes `m` (already fused). `finish` applies the rewrite rules to a candidate (this is
/// where QDQ patterns become int8 ops), so accuracy is measured on what will run.
pub fn quantize(
    m: &Module,
    opts: &QuantOptions,
    finish: &dyn Fn(Module) -> Result<Module>,
) -> Result<Quantized> {
    let samples = data::samples(&m.graph, &opts.calibrate, "--calibrate")?;
    anyhow::ensure!(!samples.is_empty(), "--calibrate: no samples");
    let layers = qdq::find_layers(m);
    let all: HashSet<String> = layers.iter().map(|l| l.key.clone()).collect();
    let (acts, _) = qdq::activations(m, &layers, &all);
    let names: Vec<String> = acts
        .iter()
        .map(|&t| m.graph.tensors[t].name.clone())
        .collect();

    let bar = guard::bar(
        opts.progress,
        calibrate::runs(samples.len(), opts.method),
        "calibrating",
    );
    let channels: Vec<Option<calibrate::Channels>> = names
        .iter()
        .map(|n| input_channels(m, &layers, n))
        .collect();
    let mut runner = runner::Runner::new(m, &names).context("calibration model")?;
    let stats = calibrate::observe(&mut runner, &channels, &samples, opts.method, &|| {
        bar.inc(1)
    })?;
    let means: HashMap<String, Vec<f64>> = names
        .iter()
        .zip(&stats)
        .filter_map(|(n, s)| Some((n.clone(), s.channel_means()?)))
        .collect();
    bar.finish_and_clear();
    let ranges: HashMap<String, (f32, f32)> = names
        .iter()
        .zip(&stats)
        .map(|(n, s)| (n.clone(), s.range(opts.method)))
        .collect();
    if qdq::debug("ranges") {
        for (n, s) in names.iter().zip(&stats) {
            eprintln!("range {n}: seen [{}, {}] → {:?}", s.min, s.max, ranges[n]);
        }
    }

    let build = |enabled: &HashSet<String>| -> Result<(Module, HashMap<String, f64>)> {
        qdq::insert(m, &layers, enabled, &ranges, &means)
    };
    let mut summary = Calibration {
        method: opts.method.name(),
        samples: samples.len(),
        layers_total: layers.len(),
        max_drop: opts.max_drop,
        ..Default::default()
    };
    let mut enabled = all.clone();
    if let Some(v) = &opts.validate {
        let val = data::samples(&m.graph, &v.inputs, "--validate")?;
        let labels = v.labels.as_deref().unwrap_or(&[]);
        let outcome = guard::guard(
            m,
            &layers,
            &val,
            labels,
            opts.max_drop,
            opts.progress,
            &|e| finish(build(e)?.0),
        )?;
        enabled = outcome.enabled;
        summary.metric = Some("top-1 %".into());
        summary.validate_samples = val.len();
        summary.fp32 = Some(outcome.fp32);
        summary.int8 = Some(outcome.int8);
        summary.fallback = outcome.fallback;
    }
    let (module, weight_sqnr) = build(&enabled)?;
    // Per-layer error against fp32, on a few calibration samples.
    let probe = &samples[..samples.len().min(REPORT_SAMPLES)];
    let rows = report::layer_errors(m, &module, &layers, &enabled, &weight_sqnr, probe)?;
    summary.layers_int8 = enabled.len();
    Ok(Quantized {
        module,
        summary,
        layers: rows,
    })
}

/// How the tensor `name` splits into channels when it is the input of a Conv or Gemm layer (for
/// the per-channel means bias correction needs).
fn input_channels(m: &Module, layers: &[qdq::Layer], name: &str) -> Option<calibrate::Channels> {
    let g = &m.graph;
    let node = g.nodes.iter().find(|n| {
        g.tensors[n.inputs[0]].name == name
            && layers
                .iter()
                .any(|l| l.key == g.tensors[n.outputs[0]].name && l.kind == qdq::Kind::Full)
    })?;
    let shape = &g.tensors[node.inputs[0]].shape;
    match &node.op {
        edgefuse_runtime::ir::Op::Conv(_) if shape.len() >= 3 => Some(calibrate::Channels {
            channels: shape[1],
            inner: shape[2..].iter().product(),
        }),
        edgefuse_runtime::ir::Op::Gemm(gm) if shape.len() == 2 => Some(if gm.trans_a {
            calibrate::Channels {
                channels: shape[0],
                inner: shape[1],
            }
        } else {
            calibrate::Channels {
                channels: shape[1],
                inner: 1,
            }
        }),
        _ => None,
    }
}

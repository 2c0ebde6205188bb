//! The accuracy guard: top-1 of fp32 and of the quantized model on labelled data; while the drop
//! exceeds `--max-drop`, per-layer sensitivity (each layer alone back in fp32, on a subset) ranks
//! the layers, and the most sensitive go back to fp32 one at a time until the drop fits.
//!
//! Sensitivity is measured as how close the model's output gets to fp32's (mean absolute
//! difference) with that one layer back in fp32, on a small subset: a continuous measure is
//! steady on a few samples, where top-1 on a few hundred flips on near-ties (on Fashion-MNIST,
//! ranking by top-1 over 1,000 samples was noise at these drops). The fallback itself is judged
//! by top-1 on the whole validation set.

use std::collections::HashSet;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::data::Sample;
use super::qdq::Layer;
use super::runner::Runner;
use crate::Module;

/// Samples the sensitivity scan runs per layer.
const SENSITIVITY_SAMPLES: usize = 16;

/// A progress bar on stderr (drawn only on a terminal, and only when `show`).
pub fn bar(show: bool, len: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

/// Top-1 (percent) of `m` over `samples` against `labels` (one per row of output 0), and the
/// concatenated output 0 values.
pub fn evaluate(
    m: &Module,
    samples: &[Sample],
    labels: &[i64],
    bar: &ProgressBar,
) -> Result<(f64, Vec<f32>)> {
    let mut runner = Runner::new(m, &[])?;
    let (mut right, mut rows) = (0usize, 0usize);
    let mut outputs = Vec::new();
    for s in samples {
        runner.run(s)?;
        let out = runner.output(0);
        let classes = out.shape.last().copied().unwrap_or(1).max(1);
        let v = out.typed::<f32>();
        for row in v.chunks_exact(classes) {
            let Some(&label) = labels.get(rows) else {
                bail!(
                    "--validate: {} labels for more rows of output than that",
                    labels.len()
                );
            };
            let best = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (k, &x)| if x > b.1 { (k, x) } else { b },
                )
                .0;
            right += (best as i64 == label) as usize;
            rows += 1;
        }
        outputs.extend_from_slice(v);
        bar.inc(1);
    }
    if rows != labels.len() {
        bail!(
            "--validate: {} labels but the model produced {rows} rows of output",
            labels.len()
        );
    }
    Ok((100.0 * right as f64 / rows.max(1) as f64, outputs))
}

pub struct Outcome {
    pub enabled: HashSet<String>,
    pub fp32: f64,
    pub int8: f64,
    /// (layer, why it stayed fp32).
    pub fallback: Vec<(String, String)>,
}

/// Measures fp32 and int8 top-1; with `max_drop`, moves layers back to fp32 until the drop fits.
/// `build(enabled)` returns the runnable module with those layers quantized.
pub fn guard(
    fp32: &Module,
    layers: &[Layer],
    val: &[Sample],
    labels: &[i64],
    max_drop: Option<f64>,
    progress: bool,
    build: &dyn Fn(&HashSet<String>) -> Result<Module>,
) -> Result<Outcome> {
    if labels.is_empty() {
        bail!("--validate needs labels");
    }
    let b = bar(progress, 2 * val.len() as u64, "validating");
    let (f, _) = evaluate(fp32, val, labels, &b)?;
    let mut enabled: HashSet<String> = layers.iter().map(|l| l.key.clone()).collect();
    let (mut q, _) = evaluate(&build(&enabled)?, val, labels, &b)?;
    b.finish_and_clear();
    let mut fallback = Vec::new();
    let Some(max_drop) = max_drop else {
        return Ok(Outcome {
            enabled,
            fp32: f,
            int8: q,
            fallback,
        });
    };
    if f - q <= max_drop {
        return Ok(Outcome {
            enabled,
            fp32: f,
            int8: q,
            fallback,
        });
    }

    // Sensitivity: each layer alone back in fp32, on a subset, ranked by how close the output
    // gets to fp32's.
    let n = val.len().min(SENSITIVITY_SAMPLES);
    let (sub, sub_labels) = subset(val, labels, n);
    let (sub, sub_labels) = (&sub[..], &sub_labels[..]);
    let hidden = ProgressBar::hidden();
    let (f_sub, ref_out) = evaluate(fp32, sub, sub_labels, &hidden)?;
    let (q_sub, _) = evaluate(&build(&enabled)?, sub, sub_labels, &hidden)?;
    let b = bar(progress, layers.len() as u64, "sensitivity");
    let mut ranked = Vec::new();
    for l in layers {
        let mut e = enabled.clone();
        e.remove(&l.key);
        let (t, out) = evaluate(&build(&e)?, sub, sub_labels, &hidden)?;
        let err = out
            .iter()
            .zip(&ref_out)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / out.len().max(1) as f64;
        ranked.push((l, t, err));
        b.inc(1);
    }
    b.finish_and_clear();
    ranked.sort_by(|a, b| a.2.total_cmp(&b.2));
    for (l, t, err) in ranked {
        if f - q <= max_drop || enabled.is_empty() {
            break;
        }
        enabled.remove(&l.key);
        let before = q;
        let b = bar(progress, val.len() as u64, "re-validating");
        q = evaluate(&build(&enabled)?, val, labels, &b)?.0;
        b.finish_and_clear();
        fallback.push((
            l.name.clone(),
            format!(
                "most sensitive {}: alone in fp32 it gives top-1 {t:.2} % on {n} samples \
                 (all int8 {q_sub:.2} %, fp32 {f_sub:.2} %; mean output error {err:.2e}); \
                 top-1 {before:.2} % → {q:.2} %",
                l.op
            ),
        ));
    }
    Ok(Outcome {
        enabled,
        fp32: f,
        int8: q,
        fallback,
    })
}

/// `n` samples spread evenly over `val` (validation sets are often ordered: by class, or by
/// photograph and its variants), and their labels (labels per sample = rows of output 0 per run).
fn subset(val: &[Sample], labels: &[i64], n: usize) -> (Vec<Sample>, Vec<i64>) {
    let per = labels.len() / val.len().max(1);
    let picks: Vec<usize> = (0..n).map(|i| i * val.len() / n.max(1)).collect();
    let samples = picks.iter().map(|&i| val[i].clone()).collect();
    let labels = picks
        .iter()
        .flat_map(|&i| {
            labels[(i * per).min(labels.len())..((i + 1) * per).min(labels.len())]
                .iter()
                .copied()
        })
        .collect();
    (samples, labels)
}

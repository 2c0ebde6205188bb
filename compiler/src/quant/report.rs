//! The per-layer quantization error against fp32, and the self-contained HTML report.
//!
//! Error at a layer is measured at its output, with everything before it quantized as it will
//! be (so it accumulates along the network): SQNR = 10·log10(Σ fp32² / Σ (int8 − fp32)²), plus the
//! max and mean absolute error; and the SQNR of the layer's own int8 weights.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use anyhow::Result;
use edgefuse_runtime::format::Calibration;
use serde::Serialize;

use super::data::Sample;
use super::qdq::{sqnr_db, Kind, Layer};
use super::runner::Runner;
use crate::Module;

/// One row of the report: a quantizable layer, or the model's first output (`op` "output").
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub op: String,
    /// int8, int8 weights, or fp32 (kept by the guard).
    pub precision: String,
    pub weight_sqnr_db: Option<f64>,
    pub output_sqnr_db: f64,
    pub max_abs_err: f64,
    pub mean_abs_err: f64,
}

/// Runs fp32 and quantized side by side on `samples` and measures each layer's output error.
pub fn layer_errors(
    fp32: &Module,
    quant: &Module,
    layers: &[Layer],
    enabled: &HashSet<String>,
    weight_sqnr: &HashMap<String, f64>,
    samples: &[Sample],
) -> Result<Vec<LayerRow>> {
    let out_name = fp32.graph.tensors[fp32.graph.outputs[0]].name.clone();
    let out_f32 = fp32.graph.tensors[fp32.graph.outputs[0]].dtype == edgefuse_runtime::DType::F32;
    let mut names: Vec<String> = layers.iter().map(|l| l.key.clone()).collect();
    if out_f32 && !names.contains(&out_name) {
        names.push(out_name.clone());
    }
    let mut a = Runner::new(fp32, &names)?;
    let mut b = Runner::new(quant, &names)?;
    let mut acc = vec![(0f64, 0f64, 0f64, 0f64, 0usize); names.len()];
    for s in samples {
        a.run(s)?;
        b.run(s)?;
        for (j, e) in acc.iter_mut().enumerate() {
            for (&x, &y) in a.probe(j).iter().zip(b.probe(j)) {
                let d = (y - x).abs() as f64;
                e.0 += (x as f64).powi(2);
                e.1 += d * d;
                e.2 = e.2.max(d);
                e.3 += d;
                e.4 += 1;
            }
        }
    }
    let rows = names
        .iter()
        .zip(&acc)
        .map(|(key, e)| {
            let layer = layers.iter().find(|l| &l.key == key);
            let precision = match layer {
                Some(l) if !enabled.contains(&l.key) => "fp32",
                Some(l) if l.kind == Kind::WeightOnly => "int8 weights",
                Some(_) => "int8",
                None => "",
            };
            LayerRow {
                name: layer.map_or(format!("output {key}"), |l| l.name.clone()),
                op: layer.map_or("output", |l| l.op).to_string(),
                precision: precision.into(),
                weight_sqnr_db: weight_sqnr.get(key).copied(),
                output_sqnr_db: sqnr_db(e.0, e.1),
                max_abs_err: e.2,
                mean_abs_err: e.3 / e.4.max(1) as f64,
            }
        })
        .collect();
    Ok(rows)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What the page shows above the chart.
pub struct PageInfo<'a> {
    pub model: &'a str,
    pub onnx_bytes: u64,
    pub fp32_weight_bytes: u64,
    pub int8_bytes: u64,
    pub seconds: f64,
}

/// One self-contained HTML page: summary, an inline-SVG bar chart of per-layer SQNR, the table.
pub fn html(info: &PageInfo, cal: &Calibration, rows: &[LayerRow]) -> String {
    let mut h = String::new();
    let title = format!("edgefuse int8 report: {}", esc(info.model));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}\
         table{{border-collapse:collapse;margin-top:12px}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}}\
         td:first-child,th:first-child,td:nth-child(2),td:nth-child(3){{text-align:left}}\
         .fp32{{color:#b35900;font-weight:600}} .k{{color:#555}} svg text{{font:11px system-ui,sans-serif}}</style>\n\
         </head><body>\n<h1>{title}</h1>\n"
    );
    let mb = |b: u64| b as f64 / 1e6;
    let _ = writeln!(
        h,
        "<p>ONNX {:.2} MB · fp32 weights {:.2} MB · <b>int8 .efm {:.2} MB</b> ({:.2}× the ONNX) · compiled in {:.1} s</p>",
        mb(info.onnx_bytes),
        mb(info.fp32_weight_bytes),
        mb(info.int8_bytes),
        info.int8_bytes as f64 / info.onnx_bytes.max(1) as f64,
        info.seconds
    );
    let _ = writeln!(
        h,
        "<p>Calibration: <b>{}</b> on {} samples · {} of {} layers int8</p>",
        esc(&cal.method),
        cal.samples,
        cal.layers_int8,
        cal.layers_total
    );
    if let (Some(m), Some(f), Some(q)) = (&cal.metric, cal.fp32, cal.int8) {
        let _ = writeln!(
            h,
            "<p>{} on {} validation samples: fp32 <b>{f:.2}</b>, int8 <b>{q:.2}</b> (drop {:.2} points{})</p>",
            esc(m),
            cal.validate_samples,
            f - q,
            cal.max_drop
                .map(|d| format!(", allowed {d}"))
                .unwrap_or_default()
        );
    }
    if !cal.fallback.is_empty() {
        h.push_str("<p>Kept in fp32 by the accuracy guard:</p><ul>\n");
        for (l, why) in &cal.fallback {
            let _ = writeln!(h, "<li><b>{}</b>: {}</li>", esc(l), esc(why));
        }
        h.push_str("</ul>\n");
    }

    // Chart: one horizontal bar per row, length = output SQNR (dB), colour by precision.
    let row_h = 18;
    let label_w = 260;
    let chart_w = 560;
    let max_db = rows
        .iter()
        .map(|r| r.output_sqnr_db.min(80.0))
        .fold(40.0f64, f64::max);
    let height = rows.len() * row_h + 40;
    let _ = writeln!(
        h,
        "<h2>Output SQNR per layer (higher is better; error accumulates through the network)</h2>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"per-layer SQNR\">",
        label_w + chart_w + 80
    );
    for t in (0..=max_db as usize).step_by(10) {
        let x = label_w as f64 + t as f64 / max_db * chart_w as f64;
        let _ = writeln!(
            h,
            "<line x1=\"{x:.1}\" y1=\"10\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{t} dB</text>",
            height - 25,
            height - 10
        );
    }
    for (k, r) in rows.iter().enumerate() {
        let y = 10 + k * row_h;
        let w = r.output_sqnr_db.clamp(0.0, max_db) / max_db * chart_w as f64;
        let colour = match r.precision.as_str() {
            "fp32" => "#e08a2c",
            "int8 weights" => "#7a9ccf",
            "" => "#6c6c6c",
            _ => "#2f6fbf",
        };
        let name: String = r.name.chars().take(38).collect();
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"><title>{}: {:.1} dB</title></rect>\
             <text x=\"{:.1}\" y=\"{}\">{:.1}</text>",
            label_w - 6,
            y + 13,
            esc(&name),
            row_h - 4,
            esc(&r.name),
            r.output_sqnr_db,
            label_w as f64 + w + 4.0,
            y + 13,
            r.output_sqnr_db
        );
    }
    h.push_str("</svg>\n<p class=\"k\">Blue: int8 · light blue: int8 weights, float activations · orange: kept in fp32 · grey: model output.</p>\n");

    h.push_str(
        "<h2>Per-layer table</h2>\n<table><tr><th>#</th><th>layer</th><th>op</th><th>precision</th>\
         <th>weight SQNR (dB)</th><th>output SQNR (dB)</th><th>max |err|</th><th>mean |err|</th></tr>\n",
    );
    for (k, r) in rows.iter().enumerate() {
        let cls = if r.precision == "fp32" {
            " class=\"fp32\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{cls}><td>{k}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.3e}</td><td>{:.3e}</td></tr>",
            esc(&r.name),
            esc(&r.op),
            esc(&r.precision),
            r.weight_sqnr_db
                .map(|d| format!("{d:.1}"))
                .unwrap_or_else(|| "–".into()),
            r.output_sqnr_db,
            r.max_abs_err,
            r.mean_abs_err
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

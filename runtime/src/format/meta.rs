//! The metadata section: everything about a model except its weights.

use serde::{Deserialize, Serialize};

use crate::ir::Graph;

/// Where a model came from and how it was compiled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// File name of the source model.
    pub source: String,
    /// SHA-256 of the source model file, hex.
    pub source_sha256: String,
    /// `edgefuse x.y.z` that compiled it.
    pub compiler: String,
    /// fp32, fp16 or int8.
    pub precision: String,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    /// Rewrite rules that fired, in order, with counts (filled by the pass driver).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules_fired: Vec<(String, usize)>,
    /// How an int8 model was calibrated and what it measured (`compile --precision int8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// The calibration summary of an int8 model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// minmax, percentile P or entropy.
    pub method: String,
    /// Calibration samples (model runs).
    pub samples: usize,
    /// Quantizable layers, and how many of them are int8.
    pub layers_total: usize,
    pub layers_int8: usize,
    /// The metric measured with `--validate` (e.g. "top-1 %"), on how many samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default)]
    pub validate_samples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp32: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drop: Option<f64>,
    /// Layers the accuracy guard kept in fp32: (layer, why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<(String, String)>,
}

/// The metadata section of a `.efm` file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub graph: Graph,
    pub provenance: Provenance,
    /// Input preprocessing spec recorded by `compile --preprocess` (camera path), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<crate::preprocess::PreprocessSpec>,
    /// Class labels recorded by `compile --labels`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

impl Meta {
    /// Every free-text string of the metadata, with what it is: the names and labels that
    /// `inspect`, `compile`, `run` and `classify` print.
    fn texts_mut(&mut self) -> Vec<(String, &mut String)> {
        let mut out: Vec<(String, &mut String)> = Vec::new();
        for (i, t) in self.graph.tensors.iter_mut().enumerate() {
            out.push((format!("tensor {i}'s name"), &mut t.name));
        }
        for (i, n) in self.graph.nodes.iter_mut().enumerate() {
            out.push((format!("node {i}'s name"), &mut n.name));
        }
        for (i, l) in self.labels.iter_mut().flatten().enumerate() {
            out.push((format!("label {i}"), l));
        }
        let p = &mut self.provenance;
        out.push(("the source file name".into(), &mut p.source));
        out.push(("the source sha256".into(), &mut p.source_sha256));
        out.push(("the compiler".into(), &mut p.compiler));
        out.push(("the precision".into(), &mut p.precision));
        for (r, _) in &mut p.rules_fired {
            out.push(("a rule name".into(), r));
        }
        if let Some(c) = &mut p.calibration {
            out.push(("the calibration method".into(), &mut c.method));
            if let Some(m) = &mut c.metric {
                out.push(("the calibration metric".into(), m));
            }
            for (layer, why) in &mut c.fallback {
                out.push(("a fallback layer".into(), layer));
                out.push(("a fallback reason".into(), why));
            }
        }
        if let Some(p) = self.preprocess.as_mut().and_then(|s| s.preset.as_mut()) {
            out.push(("the preprocessing preset".into(), p));
        }
        out
    }

    /// Refuses metadata whose text holds a control character other than tab (an escape sequence
    /// in a name would reach the terminal of whoever inspects or runs the file), naming the
    /// string.
    pub fn check_printable(&mut self) -> Result<(), String> {
        for (what, s) in self.texts_mut() {
            if s.chars().any(is_unsafe) {
                return Err(format!(
                    "{what} holds a control character: \"{}\"",
                    printable(s)
                ));
            }
        }
        Ok(())
    }

    /// Writes every control character in the metadata's text as its escape (`\u{1b}`), so
    /// names taken from an ONNX file pass [`Meta::check_printable`].
    pub fn make_printable(&mut self) {
        for (_, s) in self.texts_mut() {
            if let std::borrow::Cow::Owned(p) = printable(s) {
                *s = p;
            }
        }
    }
}

/// A character a terminal would act on rather than show: a control character other than tab
/// (tab-separated label lists are common and harmless).
fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// `s` with each control character but tab written as its escape (`\u{1b}`, `\n`).
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if is_unsafe(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_or_escaped() {
        let mut meta = Meta {
            labels: Some(vec!["cat".into(), "dog\u{1b}[2J".into()]),
            ..Default::default()
        };
        assert_eq!(
            meta.clone().check_printable().unwrap_err(),
            "label 1 holds a control character: \"dog\\u{1b}[2J\""
        );
        meta.provenance.source = "m\n.onnx".into();
        meta.make_printable();
        assert_eq!(meta.check_printable(), Ok(()));
        assert_eq!(meta.labels.as_ref().unwrap()[1], "dog\\u{1b}[2J");
        assert_eq!(meta.provenance.source, "m\\n.onnx");
        assert_eq!(printable("naïve name"), "naïve name");
        assert_eq!(printable("n01440764\ttench"), "n01440764\ttench");
    }
}

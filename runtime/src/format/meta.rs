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

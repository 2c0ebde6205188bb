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

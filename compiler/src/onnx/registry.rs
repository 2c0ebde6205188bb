//! The table from ONNX op type (and domain) to importer function, filled by each op family's
//! `register`. The default ONNX domain is `""` (`"ai.onnx"` is the same); ops of onnxruntime's
//! `com.microsoft` domain that quantized exports use are registered with `insert_in`.

use std::collections::HashMap;

use anyhow::Result;

use super::context::NodeCtx;

/// Imports one ONNX node: reads attributes and inputs from the context, emits IR ops, binds the
/// node's outputs.
pub type ImportFn = fn(&mut NodeCtx) -> Result<()>;

#[derive(Default)]
pub struct Registry {
    map: HashMap<(&'static str, &'static str), ImportFn>,
}

impl Registry {
    /// The registry with every supported op.
    pub fn with_all_ops() -> Registry {
        let mut reg = Registry::default();
        super::ops::register_all(&mut reg);
        reg
    }

    /// An op of the default ONNX domain.
    pub fn insert(&mut self, op_type: &'static str, f: ImportFn) {
        self.insert_in("", op_type, f);
    }

    /// An op of another domain (`com.microsoft`).
    pub fn insert_in(&mut self, domain: &'static str, op_type: &'static str, f: ImportFn) {
        self.map.insert((domain, op_type), f);
    }

    pub fn get(&self, domain: &str, op_type: &str) -> Option<ImportFn> {
        let domain = if domain == "ai.onnx" { "" } else { domain };
        self.map.get(&(domain, op_type)).copied()
    }

    /// Every (domain, op type) pair with an importer, the QOperator ops lowered before import
    /// included, sorted (the default domain is `""`).
    pub fn ops(&self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = (self.map.keys().copied())
            .chain(super::qoperator::lowered_ops())
            .collect();
        v.sort_unstable();
        v
    }
}

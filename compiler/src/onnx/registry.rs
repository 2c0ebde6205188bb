//! The table from ONNX op type to importer function, filled by each op family's `register`.

use std::collections::HashMap;

use anyhow::Result;

use super::context::NodeCtx;

/// Imports one ONNX node: reads attributes and inputs from the context, emits IR ops, binds the
/// node's outputs.
pub type ImportFn = fn(&mut NodeCtx) -> Result<()>;

#[derive(Default)]
pub struct Registry {
    map: HashMap<&'static str, ImportFn>,
}

impl Registry {
    /// The registry with every supported op.
    pub fn with_all_ops() -> Registry {
        let mut reg = Registry::default();
        super::ops::register_all(&mut reg);
        reg
    }

    pub fn insert(&mut self, op_type: &'static str, f: ImportFn) {
        self.map.insert(op_type, f);
    }

    pub fn get(&self, op_type: &str) -> Option<ImportFn> {
        self.map.get(op_type).copied()
    }

    /// Supported op types, sorted.
    pub fn op_types(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.map.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

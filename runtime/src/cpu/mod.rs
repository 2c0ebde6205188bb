//! The CPU backend: a static plan over one arena, then one kernel call per node.

pub mod ops;

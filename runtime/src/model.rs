//! A loaded model.

/// A compiled model, loaded from a `.efm` file.
pub struct Model {}

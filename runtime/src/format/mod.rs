//! The `.efm` container.

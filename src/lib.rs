//! The `edgefuse` command-line tool, as a library so examples and tests can share its pieces.
//!
//! - [`cli`]: one module per subcommand (`compile`, `inspect`, `run`, `bench`).
//! - [`npy`]: `.npy` input and output.

pub mod cli;
pub mod npy;

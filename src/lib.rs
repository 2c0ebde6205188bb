//! The `edgefuse` command-line tool, as a library so examples and tests can share its pieces.
//!
//! - [`cli`]: one module per subcommand (`compile`, `inspect`, `run`, `bench`).
//! - [`npy`]: `.npy` input and output.
//! - [`dataset`]: calibration/validation data for `compile --calibrate/--validate` (IDX, `.npy`).

pub mod cli;
#[cfg(feature = "compiler")]
pub mod dataset;
pub mod npy;

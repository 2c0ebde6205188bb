//! The CPU backend: a static plan over one arena, then one kernel call per node.
//!
//! [`plan`] assigns every tensor a place (constant in the file, or an arena offset by liveness);
//! [`ops`] builds one prepared kernel per node; [`Session`] runs them in order, on the caller's
//! thread or (threads > 1) on a pool entered without allocation (`worker`).

pub mod ops;
pub mod plan;
pub mod session;
pub(crate) mod worker;

pub use session::{NodeTime, Session, SessionOptions};

/// The machine's usable cores (`available_parallelism`, which reads cgroup files on every call
/// on Linux), looked up once per process.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

//! The CPU backend: a static plan over one arena, then one kernel call per node.
//!
//! [`plan`] assigns every tensor a place (constant in the file, or an arena offset by liveness);
//! [`ops`] builds one prepared kernel per node; [`Session`] runs them in order, on the caller's
//! thread or (threads > 1) on a pool entered without allocation (`worker`).

mod batch;
pub mod ops;
pub mod plan;
pub mod session;
pub(crate) mod worker;

pub use batch::thread_counts as batch_cut_thread_counts;
pub use session::{NodeTime, Session, SessionOptions};

/// The machine's usable cores (`available_parallelism`, which reads cgroup files on every call
/// on Linux), looked up once per process.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The most threads a session (or the camera preprocessing) may start: four per core, at least
/// 8. More never helps a runtime that forks and joins on every layer (on this project's 2-core
/// machine the seed CNN took 0.42 ms at 8 threads, 7.3 ms at 256, and at 5,000 no inference
/// finished in 30 s: idle threads look for work before they sleep).
pub fn max_threads() -> usize {
    (4 * cores()).max(8)
}

/// `threads` (0 taken as 1), or an error naming the machine's limit.
pub(crate) fn check_threads(threads: usize) -> crate::Result<usize> {
    let max = max_threads();
    if threads > max {
        return Err(crate::Error::invalid(format!(
            "{threads} threads requested: this machine has {} cores, so at most {max}",
            cores()
        )));
    }
    Ok(threads.max(1))
}

//! Typed errors of the runtime. Callers branch on the kind (a bad file is not a bad input);
//! the CLI prints the whole chain.

use std::path::PathBuf;

/// The runtime's error type. Every variant names the place at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a valid .efm file: {0}")]
    BadFile(String),
    #[error(".efm format version {found} is newer than this runtime reads ({supported}); upgrade edgefuse to {found}.x or later")]
    NewerVersion { found: u16, supported: u16 },
    #[error("input {name}: {msg}")]
    BadInput { name: String, msg: String },
    #[error("node #{index} \"{name}\" {op}: {msg}")]
    Node {
        index: usize,
        name: String,
        op: String,
        msg: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    /// The CUDA backend: no usable GPU or library, or a driver error.
    #[error("CUDA: {0}")]
    Cuda(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message a caught panic carried (`catch_unwind`, `JoinHandle::join`), or "no message".
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// `bail!`-like helper for the runtime's `Invalid` error.
#[macro_export]
macro_rules! invalid {
    ($($t:tt)*) => { return Err($crate::Error::Invalid(format!($($t)*))) };
}

//! Device side of flashing (cargo feature `deploy`): signed bundles, the A/B slot store, the agent
//! that receives bundles over HTTP(S), and [`ActiveModel`] for applications that follow the active
//! slot without restarting.
//!
//! - [`keys`]: ed25519 key pairs (`edgefuse.key`, `edgefuse.pub`), hex on one line.
//! - [`bundle`]: the `.efb` container: manifest + model + signature; building and verifying.
//! - [`selftest`]: the deterministic synthetic input, running it, comparing with the expected output.
//! - [`store`]: two slots, an `active` pointer switched by atomic rename, crash recovery, rollback.
//! - [`agent`]: the HTTP(S) service in front of a store (token, size limit, one install at a time).
//! - [`http`]: the minimal HTTP/1.1 (one request per connection) used by the agent and its client.
//! - [`client`]: push, rollback and status against an agent URL.
//! - [`active`]: [`ActiveModel`], a cheap per-frame check of the active pointer, reloading on change.
//! - [`fault`]: test-only fault hooks read from the environment (delays, crash points, ENOSPC).
//!
//! Boundary: nothing here is needed to run a model; embedders that only execute `.efm` files build
//! the runtime without this feature. Every failure is a [`DeployError`] whose kind the agent maps to
//! an HTTP status and whose message names the place at fault; a refused install leaves the store
//! as it was.

pub mod active;
pub mod agent;
pub mod bundle;
pub mod client;
pub mod fault;
pub mod http;
pub mod keys;
pub mod selftest;
pub mod store;

pub use active::ActiveModel;
pub use bundle::{Bundle, Manifest};
pub use keys::{PublicKey, SecretKey};
pub use store::{InstallOptions, Installed, Status, Store};

/// What went wrong, for callers that branch on it (the agent maps it to an HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Missing or wrong token.
    Unauthorized,
    /// The upload exceeds the agent's limit.
    TooLarge,
    /// The upload ended before its announced length.
    Truncated,
    /// Not a bundle, or a damaged one.
    BadBundle,
    /// Signature does not verify with the trusted key (tampered, or signed by another key).
    BadSignature,
    /// The bundle does not list this device's board.
    WrongBoard,
    /// Not newer than the installed version (and no downgrade was asked for).
    Downgrade,
    /// The model failed its self-test on this device.
    SelfTest,
    /// The store's disk is full.
    DiskFull,
    /// Nothing to act on (no previous slot to roll back to, no active model).
    NotFound,
    /// Malformed request or argument.
    BadRequest,
    /// Any other I/O failure.
    Io,
}

/// A flashing error: a kind to branch on and one sentence naming the place at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct DeployError {
    pub kind: ErrorKind,
    pub msg: String,
}

impl DeployError {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        DeployError {
            kind,
            msg: msg.into(),
        }
    }

    /// An I/O error on `path`; ENOSPC becomes [`ErrorKind::DiskFull`].
    pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        let kind = if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
            ErrorKind::DiskFull
        } else {
            ErrorKind::Io
        };
        let msg = if kind == ErrorKind::DiskFull {
            format!("{what} {}: no space left on device", path.display())
        } else {
            format!("{what} {}: {e}", path.display())
        };
        DeployError { kind, msg }
    }
}

pub type DeployResult<T> = std::result::Result<T, DeployError>;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses lowercase or uppercase hex into exactly `N` bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim().as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16);
        out[i] = (d(pair[0])? * 16 + d(pair[1])?) as u8;
    }
    Some(out)
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Compares two secrets in time independent of where they differ (both are hashed first, so the
/// time does not depend on their lengths either).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    let (x, y) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

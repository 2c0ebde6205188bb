//! ed25519 key pairs. Both files hold one line of hex: `edgefuse.key` the 32-byte secret seed
//! (written with mode 0600), `edgefuse.pub` the 32-byte public key.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;

use super::{hex, unhex, DeployError, DeployResult, ErrorKind};

/// A signing key (secret).
pub struct SecretKey(ed25519_dalek::SigningKey);

/// A verifying key (public), the device's trust anchor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> DeployResult<SecretKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            DeployError::new(ErrorKind::Io, format!("no random source for keygen: {e}"))
        })?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn load(path: &Path) -> DeployResult<SecretKey> {
        let text = read_line_file(path, "secret key")?;
        let seed = unhex::<32>(&text).ok_or_else(|| {
            DeployError::new(
                ErrorKind::BadRequest,
                format!(
                    "{}: not an edgefuse secret key (expected 64 hex digits; `edgefuse keygen` writes one)",
                    path.display()
                ),
            )
        })?;
        Ok(SecretKey::from_seed(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }

    /// Writes `DIR/edgefuse.key` (0600) and `DIR/edgefuse.pub`; refuses to overwrite a key.
    pub fn write_pair(&self, dir: &Path) -> DeployResult<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).map_err(|e| DeployError::io("creating", dir, e))?;
        let key = dir.join("edgefuse.key");
        let public = dir.join("edgefuse.pub");
        for p in [&key, &public] {
            if p.exists() {
                return Err(DeployError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "{}: already exists; refusing to overwrite a key",
                        p.display()
                    ),
                ));
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&key)
            .map_err(|e| DeployError::io("creating", &key, e))?;
        f.write_all(format!("{}\n", hex(self.0.as_bytes())).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| DeployError::io("writing", &key, e))?;
        std::fs::write(&public, format!("{}\n", self.public().to_hex()))
            .map_err(|e| DeployError::io("writing", &public, e))?;
        Ok((key, public))
    }
}

impl PublicKey {
    pub fn load(path: &Path) -> DeployResult<PublicKey> {
        let text = read_line_file(path, "public key")?;
        PublicKey::from_hex(&text).ok_or_else(|| {
            DeployError::new(
                ErrorKind::BadRequest,
                format!(
                    "{}: not an edgefuse public key (expected 64 hex digits; `edgefuse keygen` writes one)",
                    path.display()
                ),
            )
        })
    }

    pub fn from_hex(s: &str) -> Option<PublicKey> {
        let b = unhex::<32>(s)?;
        ed25519_dalek::VerifyingKey::from_bytes(&b)
            .ok()
            .map(PublicKey)
    }

    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    /// A short name for the key: its first 8 bytes, hex.
    pub fn id(&self) -> String {
        hex(&self.0.as_bytes()[..8])
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(msg, &sig).is_ok()
    }
}

/// Longest key or token file read: a device or a large file given by mistake is an error
/// after this many bytes, not an endless read.
const MAX_LINE_FILE: u64 = 4 << 10;

/// Reads a short text file holding one value (a key, a token), trimmed: at most 4 KiB.
pub fn read_line_file(path: &Path, what: &str) -> DeployResult<String> {
    use std::io::Read;
    let io = |e| DeployError::io(&format!("reading {what}"), path, e);
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_LINE_FILE + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    let bad = |why: &str| {
        DeployError::new(
            ErrorKind::BadRequest,
            format!("{}: not a {what}: {why}", path.display()),
        )
    };
    if bytes.len() as u64 > MAX_LINE_FILE {
        return Err(bad(&format!("longer than {MAX_LINE_FILE} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not text"))?;
    Ok(text.trim().to_string())
}

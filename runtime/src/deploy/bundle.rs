//! The `.efb` bundle: what `edgefuse bundle` writes and the agent accepts.
//!
//! ```text
//! 0..8        magic "EFBUNDL1"
//! 8..12       manifest length m (u32 LE)
//! 12..20      model length n (u64 LE)
//! 20..20+m    manifest, JSON (name, version, boards, model sha256 and size, creation time, self-test)
//! ..+n        the model (.efm bytes, unchanged)
//! ..+64       ed25519 signature over every byte before it (header, manifest, model)
//! ```
//! A slot in the store keeps the model as `X.efm` and the rest (the "seal": header, manifest,
//! signature) as `X.seal`, so the model can be mapped in place and the slot still re-verified.

use serde::{Deserialize, Serialize};

use super::keys::{PublicKey, SecretKey};
use super::selftest::SelfTest;
use super::{sha256_hex, DeployError, DeployResult, ErrorKind};

pub const MAGIC: &[u8; 8] = b"EFBUNDL1";
const HEADER: usize = 20;
const SIG: usize = 64;
/// Manifests larger than this are refused before parsing.
pub const MAX_MANIFEST: usize = 64 << 20;

/// What a bundle says about its model. Signed together with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bundle format version (1).
    pub format: u32,
    pub name: String,
    /// Semantic version; the agent refuses anything not newer than what it runs.
    pub version: String,
    /// Boards the model is meant for; empty means any board.
    pub boards: Vec<String>,
    pub model_sha256: String,
    pub model_size: u64,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    /// First 8 bytes (hex) of the public key that verifies the signature.
    pub key_id: String,
    pub self_test: SelfTest,
}

impl Manifest {
    pub fn semver(&self) -> DeployResult<semver::Version> {
        parse_version(&self.version)
    }
}

/// Parses a semantic version, naming it on failure.
pub fn parse_version(v: &str) -> DeployResult<semver::Version> {
    semver::Version::parse(v).map_err(|e| {
        DeployError::new(
            ErrorKind::BadRequest,
            format!("version \"{v}\" is not a semantic version like 1.2.3: {e}"),
        )
    })
}

/// A parsed bundle borrowing its bytes. `parse` checks structure only; call [`Bundle::verify`].
#[derive(Debug)]
pub struct Bundle<'a> {
    pub manifest: Manifest,
    /// Header and manifest bytes, exactly as signed.
    pub head: &'a [u8],
    pub model: &'a [u8],
    pub signature: [u8; 64],
}

fn bad(msg: impl Into<String>) -> DeployError {
    DeployError::new(ErrorKind::BadBundle, msg)
}

impl<'a> Bundle<'a> {
    /// Parses `.efb` bytes.
    pub fn parse(bytes: &'a [u8]) -> DeployResult<Bundle<'a>> {
        let (m, n) = read_header(bytes)?;
        let need = (HEADER as u64)
            .checked_add(m as u64)
            .and_then(|x| x.checked_add(n))
            .and_then(|x| x.checked_add(SIG as u64))
            .ok_or_else(|| bad("bundle header: lengths overflow"))?;
        let len = bytes.len() as u64;
        if len < need {
            return Err(bad(format!(
                "bundle truncated: {len} bytes, the header announces {need}"
            )));
        }
        if len > need {
            return Err(bad(format!(
                "bundle has {} trailing bytes after the signature",
                len - need
            )));
        }
        let (head, rest) = bytes.split_at(HEADER + m);
        let (model, sig) = rest.split_at(n as usize);
        Self::from_pieces(head, model, sig)
    }

    /// Parses a slot's seal (header, manifest, signature) and its model file.
    pub fn parse_parts(seal: &'a [u8], model: &'a [u8]) -> DeployResult<Bundle<'a>> {
        let (m, n) = read_header(seal)?;
        if seal.len() != HEADER + m + SIG {
            return Err(bad(format!(
                "seal is {} bytes, expected {}",
                seal.len(),
                HEADER + m + SIG
            )));
        }
        if model.len() as u64 != n {
            return Err(bad(format!(
                "model file is {} bytes, the seal says {n}",
                model.len()
            )));
        }
        Self::from_pieces(&seal[..HEADER + m], model, &seal[HEADER + m..])
    }

    fn from_pieces(head: &'a [u8], model: &'a [u8], sig: &[u8]) -> DeployResult<Bundle<'a>> {
        let manifest: Manifest = serde_json::from_slice(&head[HEADER..])
            .map_err(|e| bad(format!("bundle manifest is not valid: {e}")))?;
        if manifest.format != 1 {
            return Err(bad(format!(
                "bundle format {} is not supported (this edgefuse reads format 1)",
                manifest.format
            )));
        }
        Ok(Bundle {
            manifest,
            head,
            model,
            signature: sig.try_into().expect("64-byte signature slice"),
        })
    }

    /// Checks the signature with `key`, then that the model matches the manifest's size and hash.
    pub fn verify(&self, key: &PublicKey) -> DeployResult<()> {
        let mut msg = Vec::with_capacity(self.head.len() + self.model.len());
        msg.extend_from_slice(self.head);
        msg.extend_from_slice(self.model);
        if !key.verify(&msg, &self.signature) {
            let who = if self.manifest.key_id != key.id() {
                format!(
                    "it was signed by key {}, the trusted key is {}",
                    self.manifest.key_id,
                    key.id()
                )
            } else {
                "the bundle was modified after signing".to_string()
            };
            return Err(DeployError::new(
                ErrorKind::BadSignature,
                format!(
                    "bundle {} {}: signature does not verify ({who})",
                    self.manifest.name, self.manifest.version
                ),
            ));
        }
        if self.model.len() as u64 != self.manifest.model_size
            || sha256_hex(self.model) != self.manifest.model_sha256
        {
            return Err(bad(format!(
                "bundle {} {}: the model does not match the manifest's sha256",
                self.manifest.name, self.manifest.version
            )));
        }
        self.manifest.semver().map_err(|e| bad(e.msg))?;
        Ok(())
    }

    /// Header, manifest and signature: what a slot keeps beside its model.
    pub fn seal(&self) -> Vec<u8> {
        let mut v = self.head.to_vec();
        v.extend_from_slice(&self.signature);
        v
    }
}

/// The manifest of a slot's seal, without checking the model or the signature (for `status`).
pub fn seal_manifest(seal: &[u8]) -> DeployResult<Manifest> {
    let (m, _) = read_header(seal)?;
    if seal.len() != HEADER + m + SIG {
        return Err(bad(format!(
            "seal is {} bytes, expected {}",
            seal.len(),
            HEADER + m + SIG
        )));
    }
    Ok(Bundle::from_pieces(&seal[..HEADER + m], &[], &seal[HEADER + m..])?.manifest)
}

fn read_header(bytes: &[u8]) -> DeployResult<(usize, u64)> {
    if bytes.len() < HEADER {
        return Err(bad(format!(
            "bundle truncated: {} bytes, shorter than the 20-byte header",
            bytes.len()
        )));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad(
            "not an edgefuse bundle (.efb): bad magic; make one with `edgefuse bundle`",
        ));
    }
    let m = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let n = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    if m > MAX_MANIFEST {
        return Err(bad(format!("bundle manifest of {m} bytes is too large")));
    }
    if bytes.len() < HEADER + m {
        return Err(bad(format!(
            "bundle truncated: {} bytes, the manifest alone needs {}",
            bytes.len(),
            HEADER + m
        )));
    }
    Ok((m, n))
}

/// Builds and signs a bundle. `manifest.model_sha256`, `model_size` and `key_id` are filled here.
pub fn build(mut manifest: Manifest, model: &[u8], key: &SecretKey) -> DeployResult<Vec<u8>> {
    manifest.semver()?;
    manifest.model_sha256 = sha256_hex(model);
    manifest.model_size = model.len() as u64;
    manifest.key_id = key.public().id();
    let json = serde_json::to_vec(&manifest)
        .map_err(|e| DeployError::new(ErrorKind::Io, format!("encoding the manifest: {e}")))?;
    let mut out = Vec::with_capacity(HEADER + json.len() + model.len() + SIG);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&(model.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(model);
    let sig = key.sign(&out);
    out.extend_from_slice(&sig);
    Ok(out)
}

//! The slot store on a device (or a mounted card): two slots and a pointer naming the active one.
//!
//! ```text
//! DIR/lock            held (flock) during every change, so installs never interleave
//! DIR/active          JSON {slot, generation, version, sha256}: replaced by atomic rename only
//! DIR/slots/a.efm     slot a's model (mapped in place by the runtime)
//! DIR/slots/a.seal    slot a's bundle header, manifest and signature
//! DIR/slots/b.efm, b.seal
//! ```
//! An install writes the inactive slot's files under temporary names (fsync), runs the self-test on
//! them, renames them into place (fsync the directory), and only then replaces `active` the same
//! way. A crash at any point leaves `active` naming a slot that verifies: the old one until the
//! final rename, the new one after. [`Store::open`] discards temporaries and repairs a pointer that
//! names a slot that does not verify. The active slot is never written.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::bundle::{parse_version, Bundle, Manifest};
use super::keys::PublicKey;
use super::{fault, selftest, DeployError, DeployResult, ErrorKind};
use crate::Model;

pub const SLOTS: [&str; 2] = ["a", "b"];
const CHUNK: usize = 1 << 20;

/// The content of `DIR/active`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    pub slot: String,
    /// Bumped (wrapping) at every switch; [`super::ActiveModel`] reloads when it changes.
    pub generation: u64,
    pub version: String,
    pub sha256: String,
}

/// Reads `DIR/active`; None when absent or unreadable.
pub fn read_pointer(root: &Path) -> Option<Pointer> {
    let bytes = fs::read(root.join("active")).ok()?;
    let p: Pointer = serde_json::from_slice(&bytes).ok()?;
    SLOTS.contains(&p.slot.as_str()).then_some(p)
}

/// Path of a slot's model file.
pub fn slot_model(root: &Path, slot: &str) -> PathBuf {
    root.join("slots").join(format!("{slot}.efm"))
}

fn slot_seal(root: &Path, slot: &str) -> PathBuf {
    root.join("slots").join(format!("{slot}.seal"))
}

#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Accept a version that is not newer than the active one.
    pub allow_downgrade: bool,
}

/// The result of an install or rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub slot: String,
    pub generation: u64,
    /// The version active before, now kept for rollback.
    pub previous: Option<String>,
}

/// One slot as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub slot: String,
    /// "active", "previous", "empty" or "invalid".
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub board: Option<String>,
    pub trusted_key: String,
    pub active_version: Option<String>,
    pub active_slot: Option<String>,
    pub generation: u64,
    pub slots: Vec<SlotInfo>,
    pub last_error: Option<String>,
}

/// A slot store. Every change takes the in-process mutex and the `lock` file.
pub struct Store {
    root: PathBuf,
    trust: PublicKey,
    board: Option<String>,
    lock: Mutex<File>,
    last_error: Mutex<Option<String>>,
}

struct FileLock<'a>(&'a File);
impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn slot_verify(root: &Path, slot: &str, trust: &PublicKey) -> DeployResult<Option<Manifest>> {
    let manifest = slot_signed(root, slot, trust)?;
    if manifest.is_some() {
        slot_loads(root, slot)?;
    }
    Ok(manifest)
}

/// The slot's manifest when its seal and model are there and the signature and hash hold.
fn slot_signed(root: &Path, slot: &str, trust: &PublicKey) -> DeployResult<Option<Manifest>> {
    let (seal_p, model_p) = (slot_seal(root, slot), slot_model(root, slot));
    if !seal_p.exists() && !model_p.exists() {
        return Ok(None);
    }
    let seal = fs::read(&seal_p).map_err(|e| DeployError::io("reading", &seal_p, e))?;
    let model = fs::read(&model_p).map_err(|e| DeployError::io("reading", &model_p, e))?;
    let b = Bundle::parse_parts(&seal, &model)?;
    b.verify(trust)?;
    Ok(Some(b.manifest))
}

/// Whether this runtime loads the slot's model.
fn slot_loads(root: &Path, slot: &str) -> DeployResult<()> {
    Model::load(slot_model(root, slot))
        .map(|_| ())
        .map_err(|e| DeployError::new(ErrorKind::BadBundle, format!("slot {slot}: {e}")))
}

/// Writes `bytes` to `path` in chunks and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> DeployResult<()> {
    let io = |e| DeployError::io("writing", path, e);
    let mut f = File::create(path).map_err(io)?;
    let mut written = 0;
    for c in bytes.chunks(CHUNK) {
        fault::chunk(written).map_err(io)?;
        f.write_all(c).map_err(io)?;
        written += c.len();
    }
    f.sync_all().map_err(io)
}

fn sync_dir(dir: &Path) -> DeployResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DeployError::io("syncing directory", dir, e))
}

fn rename(from: &Path, to: &Path) -> DeployResult<()> {
    fs::rename(from, to).map_err(|e| DeployError::io("renaming into", to, e))
}

impl Store {
    /// Opens (creating if needed) the store at `root` and recovers it: temporaries are removed,
    /// slots whose signature or hash fails are cleared (a signed slot this runtime cannot load is
    /// kept, never active), and `active` is made to name a slot that verifies — the one it
    /// named when only its version was wrong — or removed when none does.
    pub fn open(root: &Path, trust: PublicKey, board: Option<String>) -> DeployResult<Store> {
        fs::create_dir_all(root.join("slots"))
            .map_err(|e| DeployError::io("creating the store", root, e))?;
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DeployError::io("opening", &lock_path, e))?;
        let store = Store {
            root: root.to_path_buf(),
            trust,
            board,
            lock: Mutex::new(lock),
            last_error: Mutex::new(None),
        };
        let notes = store.with_lock(|s| s.recover())?;
        if !notes.is_empty() {
            *store.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("recovered at startup: {}", notes.join("; ")));
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn board(&self) -> Option<&str> {
        self.board.as_deref()
    }

    fn with_lock<T>(&self, f: impl FnOnce(&Self) -> DeployResult<T>) -> DeployResult<T> {
        let file = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        file.lock()
            .map_err(|e| DeployError::io("locking", &self.root.join("lock"), e))?;
        let _held = FileLock(&file);
        f(self)
    }

    fn recover(&self) -> DeployResult<Vec<String>> {
        let mut notes = Vec::new();
        for dir in [self.root.clone(), self.root.join("slots")] {
            let entries = fs::read_dir(&dir).map_err(|e| DeployError::io("listing", &dir, e))?;
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(e.path());
                    notes.push(format!("discarded partial file {}", e.path().display()));
                }
            }
        }
        let mut valid = Vec::new();
        for slot in SLOTS {
            match slot_signed(&self.root, slot, &self.trust) {
                // A signed model this runtime does not load (a newer loader's rule, or a file
                // from a newer compiler) is kept for a runtime that does, never made active.
                Ok(Some(m)) => match slot_loads(&self.root, slot) {
                    Ok(()) => valid.push((slot, m)),
                    Err(e) => notes.push(format!(
                        "slot {slot} ({}) is signed but does not load here, kept but not \
                         active ({e})",
                        m.version
                    )),
                },
                Ok(None) => {}
                Err(e) => {
                    notes.push(format!("cleared slot {slot} ({e})"));
                    let _ = fs::remove_file(slot_seal(&self.root, slot));
                    let _ = fs::remove_file(slot_model(&self.root, slot));
                }
            }
        }
        sync_dir(&self.root.join("slots"))?;
        let ptr = read_pointer(&self.root);
        // The pointer must name a slot that verifies and say what that slot holds: its version
        // decides which bundles are newer.
        let ok = ptr.as_ref().is_some_and(|p| {
            valid
                .iter()
                .any(|(s, m)| *s == p.slot && m.model_sha256 == p.sha256 && m.version == p.version)
        });
        if !ok {
            let generation = ptr.as_ref().map_or(0, |p| p.generation).wrapping_add(1);
            // The slot the pointer names, when only its version is wrong (so a rollback stays
            // rolled back); else the newest valid slot becomes active.
            let same = valid.iter().find(|(s, m)| {
                ptr.as_ref()
                    .is_some_and(|p| *s == p.slot && m.model_sha256 == p.sha256)
            });
            let best = same
                .and_then(|(s, m)| m.semver().ok().map(|v| (v, *s, m)))
                .or_else(|| {
                    valid
                        .iter()
                        .filter_map(|(s, m)| m.semver().ok().map(|v| (v, *s, m)))
                        .max_by(|a, b| a.0.cmp(&b.0))
                });
            match best {
                Some((_, slot, m)) => {
                    notes.push(format!(
                        "active pointer repaired to slot {slot} ({})",
                        m.version
                    ));
                    self.write_pointer(&Pointer {
                        slot: slot.into(),
                        generation,
                        version: m.version.clone(),
                        sha256: m.model_sha256.clone(),
                    })?;
                }
                None if ptr.is_some() || self.root.join("active").exists() => {
                    notes.push("no slot verifies; no active model".into());
                    let _ = fs::remove_file(self.root.join("active"));
                    sync_dir(&self.root)?;
                }
                None => {}
            }
        }
        Ok(notes)
    }

    fn write_pointer(&self, p: &Pointer) -> DeployResult<()> {
        let tmp = self.root.join(".active.tmp");
        let json = serde_json::to_vec(p).expect("pointer serializes");
        write_synced(&tmp, &json)?;
        fault::step(11);
        rename(&tmp, &self.root.join("active"))?;
        fault::step(12);
        sync_dir(&self.root)
    }

    fn note<T>(&self, r: DeployResult<T>) -> DeployResult<T> {
        if let Err(e) = &r {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.msg.clone());
        }
        r
    }

    /// Records an error that happened before the store saw the upload (token, size, truncation).
    pub fn record_error(&self, msg: &str) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.to_string());
    }

    /// Verifies `bundle` and installs it into the inactive slot, then switches to it.
    /// On any error the store is as it was (the inactive slot may be cleared).
    pub fn install(&self, bundle: &[u8], opts: &InstallOptions) -> DeployResult<Installed> {
        let r = self.with_lock(|s| s.install_locked(bundle, opts));
        self.note(r)
    }

    fn install_locked(&self, bytes: &[u8], opts: &InstallOptions) -> DeployResult<Installed> {
        fault::step(1);
        let b = Bundle::parse(bytes)?;
        b.verify(&self.trust)?;
        let m = &b.manifest;
        let what = format!("bundle {} {}", m.name, m.version);
        fault::step(2);
        if let Some(board) = &self.board {
            if !m.boards.is_empty() && !m.boards.iter().any(|x| x == board) {
                return Err(DeployError::new(
                    ErrorKind::WrongBoard,
                    format!(
                        "{what} is for board(s) {}, this device is {board}",
                        m.boards.join(", ")
                    ),
                ));
            }
        }
        let current = read_pointer(&self.root);
        if let Some(cur) = &current {
            let (new, old) = (m.semver()?, parse_version(&cur.version)?);
            if new <= old && !opts.allow_downgrade {
                let how = if new == old {
                    "the same as"
                } else {
                    "older than"
                };
                return Err(DeployError::new(
                    ErrorKind::Downgrade,
                    format!(
                        "{what} is {how} the installed {}; refusing (ask for a downgrade explicitly to allow it)",
                        cur.version
                    ),
                ));
            }
        }
        let slot = match &current {
            Some(p) if p.slot == "a" => "b",
            _ => "a",
        };
        let (model_p, seal_p) = (slot_model(&self.root, slot), slot_seal(&self.root, slot));
        let slots = self.root.join("slots");
        let tmp_model = slots.join(format!(".{slot}.efm.tmp"));
        let tmp_seal = slots.join(format!(".{slot}.seal.tmp"));
        let cleanup = || {
            let _ = fs::remove_file(&tmp_model);
            let _ = fs::remove_file(&tmp_seal);
        };
        let staged = (|| {
            fault::step(3);
            write_synced(&tmp_model, b.model)?;
            fault::step(4);
            write_synced(&tmp_seal, &b.seal())?;
            fault::step(5);
            let model = Model::load(&tmp_model).map_err(|e| {
                DeployError::new(ErrorKind::BadBundle, format!("{what}: model: {e}"))
            })?;
            selftest::check(&m.self_test, Arc::clone(&model))
                .map_err(|e| DeployError::new(e.kind, format!("{what}: {}", e.msg)))?;
            fault::step(6);
            Ok(())
        })();
        if let Err(e) = staged {
            cleanup();
            return Err(e);
        }
        // From here the inactive slot changes; it only becomes active through the pointer.
        rename(&tmp_model, &model_p)?;
        fault::step(7);
        rename(&tmp_seal, &seal_p)?;
        fault::step(8);
        sync_dir(&slots)?;
        fault::step(9);
        let generation = current.as_ref().map_or(0, |p| p.generation).wrapping_add(1);
        self.write_pointer(&Pointer {
            slot: slot.into(),
            generation,
            version: m.version.clone(),
            sha256: m.model_sha256.clone(),
        })?;
        fault::step(13);
        Ok(Installed {
            name: m.name.clone(),
            version: m.version.clone(),
            slot: slot.into(),
            generation,
            previous: current.map(|p| p.version),
        })
    }

    /// Switches back to the other slot, if it holds a model that verifies.
    pub fn rollback(&self) -> DeployResult<Installed> {
        let r = self.with_lock(|s| {
            let cur = read_pointer(&s.root).ok_or_else(|| {
                DeployError::new(ErrorKind::NotFound, "rollback: no active model")
            })?;
            let other = if cur.slot == "a" { "b" } else { "a" };
            let m = slot_verify(&s.root, other, &s.trust)?.ok_or_else(|| {
                DeployError::new(
                    ErrorKind::NotFound,
                    format!("rollback: slot {other} holds no previous model"),
                )
            })?;
            let generation = cur.generation.wrapping_add(1);
            s.write_pointer(&Pointer {
                slot: other.into(),
                generation,
                version: m.version.clone(),
                sha256: m.model_sha256.clone(),
            })?;
            Ok(Installed {
                name: m.name,
                version: m.version,
                slot: other.into(),
                generation,
                previous: Some(cur.version),
            })
        });
        self.note(r)
    }

    /// Active version, slot states (each slot's seal parsed and its size checked; full
    /// verification happens at startup and at install) and the last error.
    pub fn status(&self) -> Status {
        let ptr = read_pointer(&self.root);
        let slots = SLOTS
            .iter()
            .map(|&slot| {
                let mut info = SlotInfo {
                    slot: slot.into(),
                    state: "empty".into(),
                    name: None,
                    version: None,
                    sha256: None,
                    created_unix: None,
                    error: None,
                };
                let seal_p = slot_seal(&self.root, slot);
                let seal = match fs::read(&seal_p) {
                    Ok(s) => s,
                    Err(_) => return info,
                };
                let len = fs::metadata(slot_model(&self.root, slot)).map_or(0, |m| m.len());
                match super::bundle::seal_manifest(&seal) {
                    Ok(m) if m.model_size == len => {
                        let active = ptr
                            .as_ref()
                            .is_some_and(|p| p.slot == slot && p.sha256 == m.model_sha256);
                        info.state = if active { "active" } else { "previous" }.into();
                        info.name = Some(m.name);
                        info.version = Some(m.version);
                        info.sha256 = Some(m.model_sha256);
                        info.created_unix = Some(m.created_unix);
                    }
                    Ok(_) => {
                        info.state = "invalid".into();
                        info.error = Some("model file size differs from the manifest".into());
                    }
                    Err(e) => {
                        info.state = "invalid".into();
                        info.error = Some(e.msg);
                    }
                }
                info
            })
            .collect();
        Status {
            board: self.board.clone(),
            trusted_key: self.trust.id(),
            active_version: ptr.as_ref().map(|p| p.version.clone()),
            active_slot: ptr.as_ref().map(|p| p.slot.clone()),
            generation: ptr.as_ref().map_or(0, |p| p.generation),
            slots,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

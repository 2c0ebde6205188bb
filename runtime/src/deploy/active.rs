//! [`ActiveModel`]: follows a store's active slot from a running application. `refresh` costs one
//! `stat` of `DIR/active` when nothing changed (call it every frame); when the pointer was replaced
//! it reads it, loads the newly active model and reports the change, so the caller rebuilds its
//! session between two frames without restarting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::store::{read_pointer, slot_model, Pointer};
use super::{sha256_hex, DeployError, DeployResult, ErrorKind};
use crate::Model;

/// Identity of the pointer file: it is only ever replaced by rename, so a new file means a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some(Stamp {
        ino,
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// The model a store's `active` pointer names, reloaded when the pointer changes.
pub struct ActiveModel {
    root: PathBuf,
    stamp: Option<Stamp>,
    pointer: Pointer,
    model: Arc<Model>,
}

fn load(root: &Path) -> DeployResult<(Pointer, Arc<Model>)> {
    let p = read_pointer(root).ok_or_else(|| {
        DeployError::new(
            ErrorKind::NotFound,
            format!("{}: no active model (flash one first)", root.display()),
        )
    })?;
    let path = slot_model(root, &p.slot);
    let bytes = std::fs::read(&path).map_err(|e| DeployError::io("reading", &path, e))?;
    if sha256_hex(&bytes) != p.sha256 {
        return Err(DeployError::new(
            ErrorKind::BadBundle,
            format!(
                "{}: does not match the active pointer (changed while loading)",
                path.display()
            ),
        ));
    }
    let model =
        Model::load(&path).map_err(|e| DeployError::new(ErrorKind::BadBundle, e.to_string()))?;
    Ok((p, model))
}

impl ActiveModel {
    /// Loads the active model of the store at `root`.
    pub fn open(root: &Path) -> DeployResult<ActiveModel> {
        let s = stamp(&root.join("active"));
        let (pointer, model) = load(root)?;
        Ok(ActiveModel {
            root: root.to_path_buf(),
            stamp: s,
            pointer,
            model,
        })
    }

    /// Checks the pointer; reloads when it names another generation. Returns true when the model
    /// changed. On a failed reload the current model stays and the error is returned (the next
    /// call retries).
    pub fn refresh(&mut self) -> DeployResult<bool> {
        let s = stamp(&self.root.join("active"));
        if s == self.stamp {
            return Ok(false);
        }
        match read_pointer(&self.root) {
            Some(p)
                if p.generation == self.pointer.generation && p.sha256 == self.pointer.sha256 =>
            {
                self.stamp = s;
                return Ok(false);
            }
            None => return Ok(false),
            Some(_) => {}
        }
        let (pointer, model) = load(&self.root)?;
        self.stamp = s;
        let changed = pointer.sha256 != self.pointer.sha256 || pointer.slot != self.pointer.slot;
        self.pointer = pointer;
        self.model = model;
        Ok(changed)
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
    pub fn generation(&self) -> u64 {
        self.pointer.generation
    }
    pub fn version(&self) -> &str {
        &self.pointer.version
    }
    pub fn slot(&self) -> &str {
        &self.pointer.slot
    }
}

//! A loaded model: the checked metadata plus the file's bytes, memory-mapped.

use std::path::Path;
use std::sync::Arc;

use crate::format::{self, Meta};
use crate::ir::{Graph, TensorId};
use crate::tensor::{AlignedBuf, TensorView};
use crate::{Error, Result};

enum Storage {
    Mapped(memmap2::Mmap),
    Owned(AlignedBuf),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(b) => b.as_slice(),
        }
    }
}

/// A compiled model, loaded and checked. Weights stay in the mapped file and are used in place,
/// except f16-stored weights (`compile --precision fp16`), which are widened to f32 once, when
/// first read as f32 ([`Model::constant`]); an fp16 CUDA session reads them as stored
/// ([`Model::stored_constant`]) and never widens them.
pub struct Model {
    storage: Storage,
    meta: Meta,
    weights: std::ops::Range<usize>,
    version: (u16, u16),
    /// `widened[id]`: the f32 copy of an f16-stored constant, made on first use (empty when
    /// the file stores none).
    widened: Vec<std::sync::OnceLock<AlignedBuf>>,
}

impl Model {
    /// Maps and checks a `.efm` file. A bad file gives `Error::BadFile` naming the problem.
    pub fn load(path: impl AsRef<Path>) -> Result<Arc<Model>> {
        let path = path.as_ref();
        let io = |e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory, not a .efm file"
            } else {
                "not a regular file (a device, pipe or socket)"
            };
            return Err(Error::BadFile(format!("{}: {what}", path.display())));
        }
        let len = meta.len();
        if len == 0 {
            return Err(Error::BadFile(format!(
                "{}: the file is empty",
                path.display()
            )));
        }
        // SAFETY: the map is read-only and private to this process. Model files are replaced by
        // atomic rename, never rewritten in place, so the mapped bytes do not change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::from_storage(Storage::Mapped(map)).map_err(|e| match e {
            Error::BadFile(m) => Error::BadFile(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Checks `.efm` bytes held in memory (copied into aligned storage).
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<Model>> {
        Self::from_storage(Storage::Owned(AlignedBuf::from_bytes(bytes)))
    }

    fn from_storage(storage: Storage) -> Result<Arc<Model>> {
        let parsed = format::parse(storage.bytes())?;
        let tensors = &parsed.meta.graph.tensors;
        let any_f16 = tensors
            .iter()
            .any(|t| t.weight.is_some_and(|w| w.stored.is_some()));
        let widened = if any_f16 {
            tensors.iter().map(|_| std::sync::OnceLock::new()).collect()
        } else {
            Vec::new()
        };
        Ok(Arc::new(Model {
            storage,
            meta: parsed.meta,
            weights: parsed.weights,
            version: parsed.version,
            widened,
        }))
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    pub fn graph(&self) -> &Graph {
        &self.meta.graph
    }
    pub fn version(&self) -> (u16, u16) {
        self.version
    }
    pub fn file_len(&self) -> usize {
        self.storage.bytes().len()
    }
    pub fn weights_len(&self) -> usize {
        self.weights.len()
    }

    /// The value of constant tensor `id`, in place (64-byte aligned), or None for non-constants.
    /// An f16-stored constant is widened to its f32 dtype on first use.
    pub fn constant(&self, id: TensorId) -> Option<TensorView<'_>> {
        let info = self.meta.graph.tensors.get(id)?;
        let stored = self.stored_constant(id)?;
        if stored.dtype == info.dtype {
            return Some(stored);
        }
        let buf = self.widened.get(id)?.get_or_init(|| {
            let mut buf = AlignedBuf::zeroed(stored.data.len() * 2);
            crate::tensor::widen_f16_bytes(stored.data, buf.as_mut_slice());
            buf
        });
        Some(TensorView {
            dtype: info.dtype,
            shape: &info.shape,
            data: buf.as_slice(),
        })
    }

    /// Constant tensor `id` as the file stores it: f16 for weights `compile --precision fp16`
    /// halved (`WeightRef::stored`), else as [`Model::constant`]. None for non-constants.
    pub fn stored_constant(&self, id: TensorId) -> Option<TensorView<'_>> {
        let info = self.meta.graph.tensors.get(id)?;
        let w = info.weight?;
        let start = self.weights.start + w.offset as usize;
        // Bounds (and an f16-stored length of half the tensor's bytes) were checked by
        // `format::parse`.
        Some(TensorView {
            dtype: w.stored.unwrap_or(info.dtype),
            shape: &info.shape,
            data: &self.storage.bytes()[start..start + w.len as usize],
        })
    }

    /// Index of the graph input or output named `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        let g = &self.meta.graph;
        g.inputs.iter().position(|&i| g.tensors[i].name == name)
    }
    pub fn output_index(&self, name: &str) -> Option<usize> {
        let g = &self.meta.graph;
        g.outputs.iter().position(|&i| g.tensors[i].name == name)
    }
}

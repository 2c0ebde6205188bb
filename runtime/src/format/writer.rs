//! Writes a `.efm` file. Used by the compiler; lives here because it defines the layout.

use std::io::Write;

use super::*;
use crate::ir::WeightRef;
use crate::{DType, Error, Result, Tensor};

/// JSON has no NaN or infinity: serde_json writes them as `null`, which no reader accepts, so
/// a graph carrying one in an attribute or a quantization scale is refused before it is written.
fn check_json_numbers(graph: &crate::ir::Graph) -> Result<()> {
    for (index, node) in graph.nodes.iter().enumerate() {
        let json = serde_json::to_string(&node.op).unwrap_or_default();
        if serde_json::from_str::<crate::ir::Op>(&json).is_err() {
            return Err(Error::Node {
                index,
                name: node.name.clone(),
                op: node.op.name().to_string(),
                msg: format!(
                    "an attribute is NaN or infinite, which a .efm file cannot store: {json}"
                ),
            });
        }
    }
    for t in &graph.tensors {
        if let Some(q) = t
            .quant
            .as_ref()
            .filter(|q| q.scale.iter().any(|s| !s.is_finite()))
        {
            return Err(Error::invalid(format!(
                "tensor \"{}\" has a quantization scale that is NaN or infinite ({:?}), \
                 which a .efm file cannot store",
                t.name, q.scale
            )));
        }
    }
    Ok(())
}

/// Serialises `meta` and the constants into `.efm` bytes. `consts[id]` is the value of tensor
/// `id` when it is a constant; each constant's `weight` reference is filled in here. An f16
/// constant for an f32 tensor is stored as f16 (`WeightRef::stored`); `Model::constant`
/// widens it on first use.
pub fn write(mut meta: Meta, consts: &[Option<&Tensor>]) -> Result<Vec<u8>> {
    if consts.len() != meta.graph.tensors.len() {
        return Err(Error::invalid("one constant slot per tensor expected"));
    }
    let mut weights: Vec<u8> = Vec::new();
    for (info, c) in meta.graph.tensors.iter_mut().zip(consts) {
        info.weight = None;
        if let Some(t) = c {
            let stored = (t.dtype == DType::F16 && info.dtype == DType::F32).then_some(DType::F16);
            if (t.dtype != info.dtype && stored.is_none()) || t.shape != info.shape {
                return Err(Error::invalid(format!(
                    "constant \"{}\" does not match its tensor info",
                    info.name
                )));
            }
            let offset = align_up(weights.len());
            weights.resize(offset, 0);
            weights.extend_from_slice(t.bytes());
            info.weight = Some(WeightRef {
                offset: offset as u64,
                len: t.bytes().len() as u64,
                stored,
            });
        }
    }
    check_json_numbers(&meta.graph)?;
    let json = serde_json::to_vec(&meta).map_err(|e| Error::invalid(format!("metadata: {e}")))?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&json)
        .map_err(|e| Error::invalid(format!("compressing the metadata: {e}")))?;
    let meta_bytes = z
        .finish()
        .map_err(|e| Error::invalid(format!("compressing the metadata: {e}")))?;

    let sections: [(u32, &[u8]); 2] = [(SECTION_META_Z, &meta_bytes), (SECTION_WEIGHTS, &weights)];
    let table_end = HEADER_LEN + SECTION_ENTRY_LEN * sections.len();
    let mut offsets = Vec::new();
    let mut pos = align_up(table_end);
    for (_, bytes) in &sections {
        offsets.push(pos);
        pos = align_up(pos + bytes.len());
    }
    let total = pos;

    let mut out = vec![0u8; total];
    out[..8].copy_from_slice(MAGIC);
    out[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    out[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
    out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    out[20..28].copy_from_slice(&(total as u64).to_le_bytes());
    for (i, ((kind, bytes), &off)) in sections.iter().zip(&offsets).enumerate() {
        let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
        out[e..e + 4].copy_from_slice(&kind.to_le_bytes());
        out[e + 8..e + 16].copy_from_slice(&(off as u64).to_le_bytes());
        out[e + 16..e + 24].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        out[e + 24..e + 28].copy_from_slice(&crc32fast::hash(bytes).to_le_bytes());
        out[off..off + bytes.len()].copy_from_slice(bytes);
    }
    let crc = crc32fast::hash(&out[..table_end]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Writes `bytes` (a `.efm` file, a bundle, an array, a report) to `path` atomically: a temporary
/// file beside it, fsync, rename.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("model"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    // A full disk (or a file-size limit) leaves neither the partial copy nor a changed `path`.
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .and_then(|_| {
            drop(f);
            std::fs::rename(&tmp, path)
        })
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
}

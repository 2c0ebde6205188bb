//! Parses and checks `.efm` bytes. Every bound is checked before use; no input panics.

use std::ops::Range;

use super::*;
use crate::{Error, Result};

/// A checked file: its metadata and where the weights section lies in the bytes.
#[derive(Debug)]
pub struct Parsed {
    pub meta: Meta,
    pub weights: Range<usize>,
    pub version: (u16, u16),
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadFile(msg.into())
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Checks header, section table, checksums, metadata and the graph; returns the parsed metadata.
pub fn parse(bytes: &[u8]) -> Result<Parsed> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad(format!(
            "no edgefuse header (expected magic \"EDGEFUSE\"{}); compile a model with `edgefuse compile`",
            // ONNX protobufs start with field 1 (ir_version), tag byte 0x08.
            if bytes.first() == Some(&0x08) { ", this looks like an ONNX file" } else { "" }
        )));
    }
    let (major, minor) = (u16_at(bytes, 8), u16_at(bytes, 10));
    if major > VERSION_MAJOR {
        return Err(Error::NewerVersion {
            found: major,
            supported: VERSION_MAJOR,
        });
    }
    let count = u32_at(bytes, 12) as usize;
    if count == 0 || count > 64 {
        return Err(bad(format!("header claims {count} sections")));
    }
    let table_end = HEADER_LEN + count * SECTION_ENTRY_LEN;
    if bytes.len() < table_end {
        return Err(bad(format!(
            "file is truncated: {} bytes, the section table alone needs {table_end}",
            bytes.len()
        )));
    }
    let declared = u64_at(bytes, 20);
    if declared != bytes.len() as u64 {
        return Err(bad(format!(
            "file is {} bytes but its header says {declared}: truncated or appended to",
            bytes.len()
        )));
    }
    let mut header = bytes[..table_end].to_vec();
    header[16..20].fill(0);
    if crc32fast::hash(&header) != u32_at(bytes, 16) {
        return Err(bad("header checksum mismatch: the file is corrupt"));
    }
    let mut meta_range = None;
    let mut weights_range = None;
    for i in 0..count {
        let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
        let kind = u32_at(bytes, e);
        let (off, len) = (u64_at(bytes, e + 8), u64_at(bytes, e + 16));
        let end = off
            .checked_add(len)
            .filter(|&end| end <= bytes.len() as u64);
        let Some(end) = end else {
            return Err(bad(format!(
                "section {i} ({off}+{len}) runs past the end of the file"
            )));
        };
        if !(off as usize).is_multiple_of(ALIGN) {
            return Err(bad(format!("section {i} is not 64-byte aligned")));
        }
        let range = off as usize..end as usize;
        if crc32fast::hash(&bytes[range.clone()]) != u32_at(bytes, e + 24) {
            let what = match kind {
                SECTION_META | SECTION_META_Z => "metadata",
                SECTION_WEIGHTS => "weights",
                _ => "a",
            };
            return Err(bad(format!(
                "{what} section checksum mismatch: the file is corrupt"
            )));
        }
        match kind {
            SECTION_META => meta_range = Some((range, false)),
            SECTION_META_Z => meta_range = Some((range, true)),
            SECTION_WEIGHTS => weights_range = Some(range),
            _ => {} // unknown sections from newer minor versions are skipped
        }
    }
    // Bytes outside the header and the sections (alignment padding) must be zero, so that every
    // byte of the file is covered by a check.
    let mut covered: Vec<Range<usize>> = (0..count)
        .map(|i| {
            let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
            let off = u64_at(bytes, e + 8) as usize;
            off..off + u64_at(bytes, e + 16) as usize
        })
        .collect();
    covered.push(0..table_end);
    covered.sort_by_key(|r| r.start);
    let mut pos = 0;
    for r in covered {
        if r.start > pos && bytes[pos..r.start].iter().any(|&b| b != 0) {
            return Err(bad(format!(
                "padding at bytes {pos}..{} is not zero: the file is corrupt",
                r.start
            )));
        }
        pos = pos.max(r.end);
    }
    if bytes[pos.min(bytes.len())..].iter().any(|&b| b != 0) {
        return Err(bad(
            "padding at the end of the file is not zero: the file is corrupt",
        ));
    }
    let meta_range = meta_range.ok_or_else(|| bad("no metadata section"))?;
    let weights = weights_range.ok_or_else(|| bad("no weights section"))?;
    let (meta_range, deflated) = meta_range;
    let inflated;
    let json = if deflated {
        inflated = inflate(&bytes[meta_range]).map_err(bad)?;
        &inflated[..]
    } else {
        &bytes[meta_range]
    };
    let mut meta: Meta =
        serde_json::from_slice(json).map_err(|e| bad(format!("metadata does not parse: {e}")))?;
    meta.check_printable().map_err(bad)?;
    let wlen = weights.len() as u64;
    for t in &meta.graph.tensors {
        if let Some(w) = t.weight {
            if w.offset % ALIGN as u64 != 0
                || w.offset.checked_add(w.len).is_none_or(|end| end > wlen)
            {
                return Err(bad(format!(
                    "constant \"{}\" lies outside the weights section",
                    t.name
                )));
            }
        }
    }
    meta.graph
        .validate()
        .map_err(|e| bad(format!("graph is inconsistent: {e}")))?;
    Ok(Parsed {
        meta,
        weights,
        version: (major, minor),
    })
}

/// Inflates the compressed metadata, refusing more than [`MAX_META_BYTES`].
fn inflate(z: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(z)
        .take(MAX_META_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("metadata does not inflate: {e}"))?;
    if out.len() > MAX_META_BYTES {
        return Err(format!(
            "metadata inflates past {} MB: the file is corrupt",
            MAX_META_BYTES >> 20
        ));
    }
    Ok(out)
}

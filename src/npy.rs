//! `.npy` files in and out of edgefuse tensors, through the `npyz` crate.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use edgefuse_runtime::tensor::TensorView;
use edgefuse_runtime::{DType, Tensor};
use npyz::WriterBuilder;

/// Reads a C-order `.npy` file of f32, f16, i64, i32, i8, u8 or bool.
pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a usable .npy file", path.display()))
}

/// Parses `.npy` bytes.
pub fn parse(bytes: &[u8]) -> Result<Tensor> {
    let npy = npyz::NpyFile::new(bytes).map_err(|e| anyhow!("{}", one_line(&e.to_string())))?;
    if npy.order() != npyz::Order::C {
        bail!("Fortran-order arrays are not supported; save with np.ascontiguousarray");
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let Some(elems) = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        bail!("shape {shape:?} has more elements than memory holds");
    };
    let descr = match npy.dtype() {
        npyz::DType::Plain(ty) => ty.to_string(),
        other => bail!("structured dtype {} is not supported", other.descr()),
    };
    // npyz reports data that ends early as an I/O error without sizes; name them instead.
    let item = match descr.as_str() {
        "<f8" | "<i8" => 8,
        "<f4" | "<i4" => 4,
        "<f2" => 2,
        _ => 1,
    };
    let need = elems.saturating_mul(item);
    let have = bytes.len().saturating_sub(header_len(bytes));
    if have < need {
        bail!("the data is {have} bytes, but shape {shape:?} of {descr} needs {need}");
    }
    let t = match descr.as_str() {
        "<f4" => Tensor::from_vec(&shape, npy.into_vec::<f32>()?)?,
        "<f8" => Tensor::from_vec(
            &shape,
            npy.into_vec::<f64>()?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        )?,
        "<i8" => Tensor::from_vec(&shape, npy.into_vec::<i64>()?)?,
        "<i4" => Tensor::from_vec(&shape, npy.into_vec::<i32>()?)?,
        "|i1" => Tensor::from_vec(&shape, npy.into_vec::<i8>()?)?,
        "|u1" => Tensor::from_vec(&shape, npy.into_vec::<u8>()?)?,
        "|b1" => Tensor::from_bytes(
            DType::Bool,
            &shape,
            &npy.into_vec::<bool>()?
                .into_iter()
                .map(u8::from)
                .collect::<Vec<_>>(),
        )?,
        "<f2" => {
            let bits = npy.into_vec::<u16>().context("f16 data")?;
            Tensor::from_bytes(DType::F16, &shape, bytemuck_u16(&bits))?
        }
        other => {
            bail!("dtype {other} is not supported (use float32, int64, int32, int8, uint8 or bool)")
        }
    };
    Ok(t)
}

/// The bytes before the data: magic, version, header length and header (format 1.0 has a
/// 16-bit length, 2.0 and 3.0 a 32-bit one). Only called on bytes npyz parsed.
fn header_len(bytes: &[u8]) -> usize {
    let le = |r: std::ops::Range<usize>| {
        bytes.get(r).map_or(0, |b| {
            b.iter().rev().fold(0usize, |a, &x| a << 8 | x as usize)
        })
    };
    match bytes.get(6) {
        Some(1) => 10 + le(8..10),
        _ => 12 + le(8..12),
    }
}

/// npyz's header errors in one line: its parser's come as a multi-line source excerpt with a
/// caret ("syntax error: --> 1:54 | … | ^--- | = expected value").
fn one_line(msg: &str) -> String {
    let mut lines = msg.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let Some((what, place)) = first.split_once("-->") else {
        return msg.split_whitespace().collect::<Vec<_>>().join(" ");
    };
    let what = what.trim().trim_end_matches(':');
    let expected = lines
        .filter_map(|l| l.strip_prefix('='))
        .map(str::trim)
        .next_back();
    match expected {
        Some(e) => format!("header: {what} at line:column {}: {e}", place.trim()),
        None => format!("header: {what} at line:column {}", place.trim()),
    }
}

fn bytemuck_u16(v: &[u16]) -> &[u8] {
    // SAFETY: u16 has no padding and any byte pattern is a valid u8; length is 2 bytes per item.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 2) }
}

/// Writes a tensor as a C-order `.npy` file (f16 tensors are widened to float32), atomically:
/// an interrupted write leaves the file that was there.
pub fn write(path: &Path, t: TensorView) -> Result<()> {
    let mut w = std::io::Cursor::new(Vec::new());
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    macro_rules! put {
        ($ty:ty) => {{
            let mut wr = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut w)
                .begin_nd()?;
            wr.extend(t.typed::<$ty>().iter().copied())?;
            wr.finish()?;
        }};
    }
    match t.dtype {
        DType::F32 => put!(f32),
        DType::I64 => put!(i64),
        DType::I32 => put!(i32),
        DType::I8 => put!(i8),
        DType::U8 => put!(u8),
        DType::Bool => {
            let mut wr = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut w)
                .begin_nd()?;
            wr.extend(t.data.iter().map(|&b| b != 0))?;
            wr.finish()?;
        }
        DType::F16 => {
            let mut wr = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut w)
                .begin_nd()?;
            wr.extend(t.typed::<half::f16>().iter().map(|v| v.to_f32()))?;
            wr.finish()?;
        }
    }
    edgefuse_runtime::format::write_file(path, &w.into_inner())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    /// A format 1.0 `.npy` of `header` (a Python dict literal) and `data`.
    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    }

    fn error(bytes: &[u8]) -> String {
        format!("{:#}", super::parse(bytes).unwrap_err())
    }

    /// A header whose shape multiplies past usize is refused, naming the shape.
    #[test]
    fn a_shape_past_usize_is_refused() {
        let e = error(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", &[]));
        assert!(e.contains("more elements than memory holds"), "{e}");
    }

    /// Data that ends early names both sizes (npyz says "failed to fill whole buffer"), and a
    /// header that does not parse is one line naming the place (npyz's is a six-line excerpt).
    #[test]
    fn short_data_and_bad_headers_are_one_line_naming_what_is_wrong() {
        let shape = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let e = error(&npy(shape, &[0; 20]));
        assert_eq!(e, "the data is 20 bytes, but shape [2, 3] of <f4 needs 24");
        assert_eq!(super::parse(&npy(shape, &[0; 24])).unwrap().shape, [2, 3]);
        let e = error(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,, }",
            &[],
        ));
        assert_eq!(
            e,
            "header: could not parse Python expression: syntax error at line:column 1:54: \
             expected value"
        );
        assert!(!error(b"\x93NUMPY\x01").contains('\n'));
    }
}

//! Calibration and validation data for `compile --calibrate / --validate`: IDX files (MNIST and
//! Fashion-MNIST format, gzipped or not), `.npy` batches (first axis counts samples), a folder
//! of either, or photographs (an image file or a folder of them), which go through the
//! compile's `--preprocess` spec exactly as `classify` will feed the model. Everything becomes
//! one tensor per input whose first axis counts samples; the compiler splits it into per-sample
//! inputs of the model's shape.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgefuse_compiler::quant::{Batch, Dataset};
use edgefuse_runtime::capture::frame::Frame;
use edgefuse_runtime::ir::TensorInfo;
use edgefuse_runtime::preprocess::{Color, CpuPreprocessor, Layout, PreprocessSpec, Target};
use edgefuse_runtime::{DType, Tensor};

/// Reads `--calibrate` values: `FILE_OR_DIR` for a one-input model, `NAME=FILE_OR_DIR` per input.
/// Photographs need `prep`, the compile's `--preprocess` spec.
pub fn load_inputs(specs: &[String], prep: Option<&PreprocessSpec>) -> Result<Vec<Batch>> {
    specs
        .iter()
        .map(|s| {
            let (name, path) = match s.split_once('=') {
                Some((n, p)) if !n.is_empty() && !Path::new(s).exists() => {
                    (Some(n.to_string()), PathBuf::from(p))
                }
                _ => (None, PathBuf::from(s)),
            };
            let data = load_samples(&path, prep)?;
            check_finite(&path, &data)?;
            Ok(Batch { input: name, data })
        })
        .collect()
}

/// Reads `--validate DATA` with its labels: IDX images (labels found beside them, `images` →
/// `labels`), or `.npy` inputs with `labels` given (or found beside as `_x` → `_y`).
pub fn load_labelled(spec: &str, labels: Option<&Path>) -> Result<Dataset> {
    let inputs = load_inputs(&[spec.to_string()], None)?;
    let data_path = PathBuf::from(spec.split_once('=').map(|(_, p)| p).unwrap_or(spec));
    let label_path = match labels {
        Some(p) => p.to_path_buf(),
        None => guess_labels(&data_path).with_context(|| {
            format!(
                "--validate {}: no labels file found beside it; give --validate-labels FILE",
                data_path.display()
            )
        })?,
    };
    let labels = read_labels(&label_path)?;
    Ok(Dataset {
        inputs,
        labels: Some(labels),
    })
}

fn guess_labels(data: &Path) -> Option<PathBuf> {
    let name = data.file_name()?.to_str()?;
    let candidates = [
        name.replace("images-idx3", "labels-idx1"),
        name.replace("images", "labels"),
        name.replace("_x.", "_y."),
        name.replace("inputs", "labels"),
    ];
    candidates
        .into_iter()
        .filter(|c| c != name)
        .map(|c| data.with_file_name(c))
        .find(|p| p.is_file())
}

/// Refuses samples with a NaN or infinite value, naming the first: calibration would measure
/// ranges around them, or skip them, without a word.
fn check_finite(path: &Path, t: &Tensor) -> Result<()> {
    let bad = match t.dtype {
        DType::F32 => t.as_slice::<f32>()?.iter().position(|v| !v.is_finite()),
        DType::F16 => t
            .as_slice::<half::f16>()?
            .iter()
            .position(|v| !v.is_finite()),
        _ => None,
    };
    let Some(at) = bad else { return Ok(()) };
    let per_sample = t.shape.iter().skip(1).product::<usize>().max(1);
    let value = t.to_f32_vec()?[at];
    bail!(
        "{}: sample {} (counting from 0) has a value that is {value}, at element {at}",
        path.display(),
        at / per_sample
    )
}

/// Labels as class indices: IDX (u8), `.npy` (integers), or text (one integer per line).
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let ctx = || format!("reading labels {}", path.display());
    let t = if is_npy(path) {
        crate::npy::read(path)?
    } else {
        let bytes = read_maybe_gz(path).with_context(ctx)?;
        if let Some(t) = parse_idx(&bytes).with_context(ctx)? {
            t
        } else {
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{}: not IDX, .npy or text", path.display()))?;
            let v = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(k, l)| {
                    l.trim().parse::<i64>().with_context(|| {
                        format!(
                            "{} line {}: \"{l}\" is not a class index",
                            path.display(),
                            k + 1
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::from_vec(&[v.len()], v)?
        }
    };
    match t.dtype {
        DType::F32 | DType::F16 | DType::Bool => {
            bail!(
                "{}: labels must be integers, got {}",
                path.display(),
                t.dtype
            )
        }
        _ => Ok(t.to_i64_vec()?),
    }
}

/// One input's samples from a file or a folder (files in name order, concatenated).
fn load_samples(path: &Path, prep: Option<&PreprocessSpec>) -> Result<Tensor> {
    if is_image(path) {
        return load_images(path, &[path.to_path_buf()], prep);
    }
    if path.is_dir() {
        let mut images: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        images.sort();
        if !images.is_empty() {
            return load_images(path, &images, prep);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && (is_npy(p) || looks_idx(p)))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "{}: no images, .npy or IDX files in this folder",
                path.display()
            );
        }
        let parts = files
            .iter()
            .map(|f| load_file(f))
            .collect::<Result<Vec<_>>>()?;
        return concat(path, parts);
    }
    load_file(path)
}

/// Photographs preprocessed by `prep` into one f32 tensor `[n, …]` (NCHW or NHWC as the spec
/// says). The output size is the spec's crop (or its resize): the model's input shape is not
/// known yet, and the compiler checks the samples against it.
fn load_images(what: &Path, files: &[PathBuf], prep: Option<&PreprocessSpec>) -> Result<Tensor> {
    let Some(spec) = prep else {
        bail!(
            "{}: calibrating on images needs the model's preprocessing: give --preprocess \
             (a preset such as efficientnet_lite0, or e.g. resize=256,crop=224,mean=127,std=128)",
            what.display()
        );
    };
    let Some((w, h)) = spec.crop.or(spec.resize.map(|r| (r, r))) else {
        bail!("--preprocess: calibrating on images needs an output size in the spec (crop=W or crop=WxH)");
    };
    let (w, h) = (w as usize, h as usize);
    let c = if spec.color == Color::Gray { 1 } else { 3 };
    let shape = if spec.layout == Layout::Nhwc {
        vec![1, h, w, c]
    } else {
        vec![1, c, h, w]
    };
    let info = TensorInfo {
        name: "calibration".into(),
        dtype: DType::F32,
        shape: shape.clone(),
        weight: None,
        quant: None,
    };
    let target = Target::for_input(spec, &info)?;
    let mut pre = CpuPreprocessor::new(spec.clone(), target)?;
    let per = target.byte_len();
    // Sized by the spec and the number of files: refused, not an abort, when the machine
    // cannot hold it.
    // Over 64 GiB is refused outright: with the kernel's overcommit on, a larger reservation
    // can succeed and then be killed while it is filled.
    let total = per.saturating_mul(files.len());
    let mut bytes = Vec::new();
    if total > 64 << 30 || bytes.try_reserve_exact(total).is_err() {
        bail!(
            "{}: {} images preprocessed to {w}x{h} need {total} bytes, more than this machine can allocate",
            what.display(),
            files.len()
        );
    }
    bytes.resize(total, 0);
    let mut frame = Frame::empty();
    for (f, out) in files.iter().zip(bytes.chunks_exact_mut(per)) {
        edgefuse_runtime::capture::image::load(f, &mut frame)?;
        pre.run(&frame, out)
            .with_context(|| format!("preprocessing {}", f.display()))?;
    }
    let mut shape = shape;
    shape[0] = files.len();
    Ok(Tensor::from_bytes(DType::F32, &shape, &bytes)?)
}

fn is_image(p: &Path) -> bool {
    p.is_file() && edgefuse_runtime::capture::image::is_image(p)
}

fn load_file(path: &Path) -> Result<Tensor> {
    if is_npy(path) {
        return crate::npy::read(path);
    }
    let bytes = read_maybe_gz(path).with_context(|| format!("reading {}", path.display()))?;
    match parse_idx(&bytes)
        .with_context(|| format!("{} is not a valid IDX file", path.display()))?
    {
        // IDX images are u8 pixels; the models take them in 0..1.
        Some(t) if t.dtype == DType::U8 => {
            let v: Vec<f32> = t.bytes().iter().map(|&b| b as f32 / 255.0).collect();
            Ok(Tensor::from_vec(&t.shape, v)?)
        }
        Some(t) => Ok(t),
        None => bail!(
            "{}: not a .npy or IDX file (calibration data is IDX, .npy, or a folder of them)",
            path.display()
        ),
    }
}

fn concat(path: &Path, parts: Vec<Tensor>) -> Result<Tensor> {
    let first = &parts[0];
    let mut bytes = Vec::new();
    let mut n = 0;
    for p in &parts {
        if p.dtype != first.dtype || p.shape.get(1..) != first.shape.get(1..) {
            bail!(
                "{}: files disagree on sample type/shape ({} {:?} vs {} {:?})",
                path.display(),
                p.dtype,
                p.shape,
                first.dtype,
                first.shape
            );
        }
        n += p.shape.first().copied().unwrap_or(1);
        bytes.extend_from_slice(p.bytes());
    }
    let mut shape = first.shape.clone();
    if shape.is_empty() {
        shape.push(n);
    } else {
        shape[0] = n;
    }
    Ok(Tensor::from_bytes(first.dtype, &shape, &bytes)?)
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "npy")
}

fn looks_idx(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("idx3") || n.contains("idx1") || n.ends_with("-ubyte"))
}

/// The most a gzip file may decompress to: 1 GiB (MNIST's training images are 47 MB). A gzip
/// bomb of a few MB would otherwise take all the memory there is.
const GZIP_LIMIT: u64 = 1 << 30;

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    gunzip_within(std::fs::read(path)?, GZIP_LIMIT)
}

/// `raw`, or its decompression when it is gzip, refused past `limit` bytes.
fn gunzip_within(raw: Vec<u8>, limit: u64) -> Result<Vec<u8>> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .take(limit + 1)
        .read_to_end(&mut out)
        .context("gzip data is damaged")?;
    if out.len() as u64 > limit {
        bail!(
            "gzip data decompresses to more than {} MiB; give a smaller set",
            limit >> 20
        );
    }
    Ok(out)
}

/// Parses IDX bytes (`00 00 type ndim`, big-endian dims, data). None when the magic is not IDX.
fn parse_idx(b: &[u8]) -> Result<Option<Tensor>> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Ok(None);
    }
    let (dtype, size) = match b[2] {
        0x08 => (DType::U8, 1),
        0x09 => (DType::I8, 1),
        0x0C => (DType::I32, 4),
        0x0D => (DType::F32, 4),
        _ => return Ok(None),
    };
    let ndim = b[3] as usize;
    if ndim == 0 || b.len() < 4 + 4 * ndim {
        bail!("header is truncated");
    }
    let shape: Vec<usize> = (0..ndim)
        .map(|k| u32::from_be_bytes(b[4 + 4 * k..8 + 4 * k].try_into().unwrap()) as usize)
        .collect();
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(size))
        .filter(|&c| c <= b.len())
        .with_context(|| format!("dimensions {shape:?} do not fit the file"))?;
    let data = &b[4 + 4 * ndim..];
    if data.len() != count {
        bail!(
            "dimensions {shape:?} need {count} bytes of data, the file has {}",
            data.len()
        );
    }
    let t = match dtype {
        DType::I32 => {
            let v: Vec<i32> = data
                .chunks_exact(4)
                .map(|c| i32::from_be_bytes(c.try_into().unwrap()))
                .collect();
            Tensor::from_vec(&shape, v)?
        }
        DType::F32 => {
            let v: Vec<f32> = data
                .chunks_exact(4)
                .map(|c| f32::from_be_bytes(c.try_into().unwrap()))
                .collect();
            Tensor::from_vec(&shape, v)?
        }
        d => Tensor::from_bytes(d, &shape, data)?,
    };
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_round_trip_and_damage() {
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        b.extend([0u8, 255, 7, 9]);
        let t = parse_idx(&b).unwrap().unwrap();
        assert_eq!(t.shape, vec![2, 1, 2]);
        assert_eq!(t.bytes(), &[0, 255, 7, 9]);
        assert!(parse_idx(&b[..18]).is_err());
        assert!(parse_idx(b"\x89PNG").unwrap().is_none());
        let mut huge = b.clone();
        huge[4] = 0xff;
        assert!(parse_idx(&huge).is_err());
    }

    /// A NaN or infinite sample is refused naming the file and the sample; it used to
    /// calibrate without a word.
    #[test]
    fn samples_that_are_not_numbers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (bad, says) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
            let mut v = vec![0.5f32; 3 * 4];
            v[2 * 4 + 1] = bad;
            let path = dir.path().join("cal.npy");
            crate::npy::write(&path, Tensor::from_vec(&[3, 4], v).unwrap().view()).unwrap();
            let e = load_inputs(&[path.display().to_string()], None)
                .err()
                .unwrap()
                .to_string();
            assert_eq!(
                e,
                format!(
                    "{}: sample 2 (counting from 0) has a value that is {says}, at element 9",
                    path.display()
                )
            );
        }
    }

    /// Gzip data is decompressed up to a limit, then refused naming it (the limit here is
    /// 1 MiB: the real one, 1 GiB, is too much to allocate in a test).
    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit() {
        use std::io::Write;
        let gz = |n: usize| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&vec![0u8; n]).unwrap();
            e.finish().unwrap()
        };
        let bomb = gz((1 << 20) + 1);
        assert!(bomb.len() < 8 << 10, "{} bytes", bomb.len());
        let e = gunzip_within(bomb, 1 << 20).unwrap_err().to_string();
        assert_eq!(
            e,
            "gzip data decompresses to more than 1 MiB; give a smaller set"
        );
        assert_eq!(gunzip_within(gz(1 << 20), 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(gunzip_within(b"IDX".to_vec(), 1).unwrap(), b"IDX");
    }

    #[test]
    fn images_too_many_for_memory_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("a.png");
        std::fs::write(&photo, b"never read").unwrap();
        // 10000 inputs of 3 x 16384 x 16384 f32: 32 TB.
        let spec = PreprocessSpec::parse("crop=16384").unwrap();
        let e = load_images(dir.path(), &vec![photo; 10_000], Some(&spec)).unwrap_err();
        assert!(
            e.to_string()
                .contains("10000 images preprocessed to 16384x16384 need"),
            "{e}"
        );
    }
}

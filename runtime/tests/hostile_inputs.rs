//! Hostile inputs to the camera path, built in memory: image files, camera frames, raw frame
//! files and preprocessing specs that are wrong in one way each. Every case either gives the
//! right frame or one error naming what is wrong: no panic, no huge allocation, no endless
//! stream of errors, no silent garbage. Each table runs every case and then lists the ones
//! that went otherwise.

use std::io::Write;
use std::path::Path;

use edgefuse_runtime::capture::{self, encode, Frame, PixelFormat};
use edgefuse_runtime::ir::{QuantParams, TensorInfo};
use edgefuse_runtime::preprocess::{CpuPreprocessor, PreprocessSpec, Target};
use edgefuse_runtime::{DType, Tensor};

/// What a case should give: a frame of this size, or an error containing this text.
#[derive(Debug)]
enum Want {
    Size(usize, usize),
    Err(&'static str),
}

/// Checks one outcome; a panic counts as a failure, with its message.
fn judge(
    name: &str,
    got: std::thread::Result<edgefuse_runtime::Result<(usize, usize)>>,
    want: &Want,
    failures: &mut Vec<String>,
) {
    let shown = match &got {
        Ok(Ok((w, h))) => format!("{w}x{h}"),
        Ok(Err(e)) => format!("error: {e}"),
        Err(p) => format!(
            "PANIC: {}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or(p.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        ),
    };
    println!("{name}: {shown}");
    let ok = match (&got, want) {
        (Ok(Ok(size)), Want::Size(w, h)) => *size == (*w, *h),
        (Ok(Err(e)), Want::Err(needle)) => e.to_string().contains(needle),
        _ => false,
    };
    if !ok {
        failures.push(format!("{name}: want {want:?}, got {shown}"));
    }
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A 16x12 test picture, packed RGB24.
fn picture(w: usize, h: usize) -> Vec<u8> {
    (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect()
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// A PNG written by hand: any header (even a lying one), optional palette, `rows` deflated.
fn png(w: u32, h: u32, depth: u8, color: u8, palette: &[u8], rows: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    if !palette.is_empty() {
        png_chunk(&mut out, b"PLTE", palette);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(rows).unwrap();
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// An image encoded by the `image` crate.
fn encoded(format: image::ImageFormat, img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A baseline JPEG of the test picture with its frame header's size replaced.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut d = encode::encode(&picture(16, 16), 16, 16, PixelFormat::Mjpeg).unwrap();
    let sof = d.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    d[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    d[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    d
}

/// A 24-bit BMP header announcing `w x h`, followed by `data`.
fn bmp(w: i32, h: i32, data: &[u8]) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&(54 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out.extend_from_slice(data);
    out
}

/// `tests/fixtures/progressive.jpg` and `cmyk.jpg`: a 16x12 picture saved by Pillow
/// (`save(..., progressive=True)`, `convert("CMYK").save(...)`), kinds `image` cannot write.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn image_files_decode_or_name_what_is_wrong() {
    use image::{DynamicImage, ImageBuffer, ImageFormat};
    let (w, h) = (16u32, 12u32);
    let rgb = image::RgbImage::from_raw(w, h, picture(16, 12)).unwrap();
    let png_ok = encoded(ImageFormat::Png, DynamicImage::ImageRgb8(rgb.clone()));
    let jpeg_ok = encoded(ImageFormat::Jpeg, DynamicImage::ImageRgb8(rgb.clone()));
    let bmp_ok = encoded(ImageFormat::Bmp, DynamicImage::ImageRgb8(rgb.clone()));
    let sixteen = DynamicImage::ImageLuma16(ImageBuffer::from_fn(w, h, |x, y| {
        image::Luma([(x * 4000 + y * 300) as u16])
    }));
    let gray_alpha = DynamicImage::ImageLumaA8(ImageBuffer::from_fn(w, h, |x, y| {
        image::LumaA([(x * 16) as u8, (y * 20) as u8])
    }));
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
    let indexed: Vec<u8> = (0..12u8)
        .flat_map(|y| std::iter::once(0).chain((0..16u8).map(move |x| x * 16 + y)))
        .collect();
    let photo = picture(64, 48);
    let big_jpeg = encode::encode(&photo, 64, 48, PixelFormat::Mjpeg).unwrap();
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        ("ok.png", png_ok.clone(), Want::Size(16, 12)),
        ("ok.jpg", jpeg_ok.clone(), Want::Size(16, 12)),
        ("ok.bmp", bmp_ok.clone(), Want::Size(16, 12)),
        (
            "sixteen_bit.png",
            encoded(ImageFormat::Png, sixteen),
            Want::Size(16, 12),
        ),
        (
            "gray_alpha.png",
            encoded(ImageFormat::Png, gray_alpha),
            Want::Size(16, 12),
        ),
        (
            "palette.png",
            png(16, 12, 8, 3, &palette, &indexed),
            Want::Size(16, 12),
        ),
        (
            "one_column.png",
            png(1, 40, 8, 0, &[], &[0; 80]),
            Want::Size(1, 40),
        ),
        (
            "progressive.jpg",
            fixture("progressive.jpg"),
            Want::Size(16, 12),
        ),
        ("cmyk.jpg", fixture("cmyk.jpg"), Want::Size(16, 12)),
        // The content decides, not the extension.
        ("png_named.jpg", png_ok.clone(), Want::Size(16, 12)),
        ("jpeg_named.bmp", jpeg_ok.clone(), Want::Size(16, 12)),
        ("bmp_named.png", bmp_ok.clone(), Want::Size(16, 12)),
        ("empty.png", Vec::new(), Want::Err("empty file")),
        (
            "text.png",
            b"not an image at all".to_vec(),
            Want::Err("cannot decode"),
        ),
        (
            "truncated.png",
            png_ok[..png_ok.len() / 2].to_vec(),
            Want::Err("cannot decode"),
        ),
        (
            "truncated.jpg",
            big_jpeg[..big_jpeg.len() / 2].to_vec(),
            Want::Err("cannot decode"),
        ),
        (
            "truncated.bmp",
            bmp_ok[..bmp_ok.len() / 2].to_vec(),
            Want::Err("cannot decode"),
        ),
        (
            "zero.png",
            png(0, 0, 8, 2, &[], &[]),
            Want::Err("cannot decode"),
        ),
        ("zero.jpg", jpeg_claiming(0, 0), Want::Err("cannot decode")),
        ("zero.bmp", bmp(0, 0, &[]), Want::Err("cannot decode")),
        (
            "negative.bmp",
            bmp(-5, i32::MIN, &[]),
            Want::Err("cannot decode"),
        ),
        // Decompression bombs: a few bytes announcing a huge picture.
        (
            "bomb.png",
            png(100_000, 100_000, 8, 2, &[], &[0; 1000]),
            Want::Err("100000x100000"),
        ),
        (
            "bomb.jpg",
            jpeg_claiming(65_000, 65_000),
            Want::Err("65000x65000"),
        ),
        (
            "bomb.bmp",
            bmp(100_000, 100_000, &[]),
            Want::Err("100000, 100000"),
        ),
        (
            "bomb_within_limits.png",
            png(12_000, 12_000, 8, 2, &[], &[0; 1000]),
            Want::Err("cannot decode"),
        ),
        (
            "bomb_within_limits.jpg",
            jpeg_claiming(12_000, 12_000),
            Want::Err("12000x12000"),
        ),
        (
            "bomb_within_limits.bmp",
            bmp(12_000, 12_000, &[]),
            Want::Err("cannot decode"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, bytes, want) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let got = std::panic::catch_unwind(|| {
            let mut f = Frame::empty();
            capture::image::load(&path, &mut f)?;
            f.check()?;
            Ok((f.width, f.height))
        });
        judge(name, got, want, &mut failures);
    }
    // A folder named like an image, given as a file.
    let folder = dir.path().join("folder.png");
    std::fs::create_dir(&folder).unwrap();
    let got = std::panic::catch_unwind(|| {
        capture::image::load(&folder, &mut Frame::empty()).map(|()| (0, 0))
    });
    judge("folder.png", got, &Want::Err("folder.png"), &mut failures);
    // A pipe named like an image: refused, not read for ever.
    let pipe = dir.path().join("pipe.jpg");
    if std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .is_ok_and(|s| s.success())
    {
        let got = std::panic::catch_unwind(|| {
            capture::image::load(&pipe, &mut Frame::empty()).map(|()| (0, 0))
        });
        judge(
            "pipe.jpg",
            got,
            &Want::Err("not a regular file"),
            &mut failures,
        );
    }
    report(failures);
}

/// Stray bytes between two header segments, which libjpeg and Pillow accept, decode to the
/// same pixels as the clean file; a scan cut short (with stray bytes too) or broken by a marker,
/// which would leave the rest of the picture grey, is still refused.
#[test]
fn stray_bytes_between_segments_decode() {
    let clean = encode::encode(&picture(64, 48), 64, 48, PixelFormat::Mjpeg).unwrap();
    let load = |bytes: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        std::fs::write(&path, bytes).unwrap();
        let mut f = Frame::empty();
        capture::image::load(&path, &mut f).map(|()| f)
    };
    let want = load(&clean).unwrap();
    // After the first segment that follows the start-of-image marker.
    let first = 2 + 2 + usize::from(u16::from_be_bytes([clean[4], clean[5]]));
    assert_eq!(clean[first], 0xFF, "a segment starts at {first}");
    let mut stray = clean.clone();
    stray.splice(first..first, [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC]);
    let got = load(&stray).unwrap_or_else(|e| panic!("stray bytes refused: {e}"));
    assert_eq!((got.width, got.height), (64, 48));
    assert!(got.data == want.data, "stray bytes changed the pixels");
    // Stray bytes do not excuse a scan cut short: still an error, not grey fill.
    let cut = load(&stray[..stray.len() * 2 / 3])
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(cut.contains("cannot decode"), "{cut}");

    // A restart marker in the middle of the scan data.
    let sos = clean.windows(2).rposition(|m| m == [0xFF, 0xDA]).unwrap();
    let mid = sos + (clean.len() - sos) / 2;
    let mut broken = clean.clone();
    broken.splice(mid..mid, [0xFF, 0xC4]);
    let err = load(&broken).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("cannot decode"), "{err}");
}

/// A 32x32 f32 model input.
fn target(channels: usize) -> Target {
    Target {
        width: 32,
        height: 32,
        channels,
        dtype: DType::F32,
        quant: Default::default(),
    }
}

/// A frame of the test picture in `format`, as `encode` packs it.
fn frame(format: PixelFormat, w: usize, h: usize) -> Frame {
    Frame::new(
        format,
        w,
        h,
        encode::encode(&picture(w, h), w, h, format).unwrap(),
    )
}

#[test]
fn camera_frames_preprocess_or_name_what_is_wrong() {
    let good = frame(PixelFormat::Yuyv, 64, 48);
    let with = |f: &dyn Fn(&mut Frame)| {
        let mut g = good.clone();
        f(&mut g);
        g
    };
    let mjpeg = |data: Vec<u8>| Frame::new(PixelFormat::Mjpeg, 64, 48, data);
    let mut garbage = vec![0xFF, 0xD8];
    garbage.extend((0..500).map(|i| (i * 37 % 256) as u8));
    garbage.extend([0xFF, 0xD9]);
    let cases: Vec<(&str, Frame, Want)> = vec![
        ("good", good.clone(), Want::Size(64, 48)),
        (
            "odd_yuyv",
            frame(PixelFormat::Yuyv, 63, 47),
            Want::Size(63, 47),
        ),
        ("odd_uyvy", frame(PixelFormat::Uyvy, 1, 1), Want::Size(1, 1)),
        (
            "odd_nv12",
            frame(PixelFormat::Nv12, 63, 47),
            Want::Size(63, 47),
        ),
        (
            "one_pixel_nv12",
            frame(PixelFormat::Nv12, 1, 1),
            Want::Size(1, 1),
        ),
        (
            "one_row_rgb",
            frame(PixelFormat::Rgb24, 640, 1),
            Want::Size(640, 1),
        ),
        (
            "one_column_grey",
            frame(PixelFormat::Grey, 1, 480),
            Want::Size(1, 480),
        ),
        (
            "jpeg",
            mjpeg(encode::encode(&picture(64, 48), 64, 48, PixelFormat::Mjpeg).unwrap()),
            Want::Size(64, 48),
        ),
        (
            "short",
            with(&|f| f.data.truncate(1000)),
            Want::Err("short yuyv frame: 1000 bytes"),
        ),
        (
            "empty",
            with(&|f| f.data.clear()),
            Want::Err("short yuyv frame: 0 bytes"),
        ),
        (
            "long",
            with(&|f| f.data.extend([0; 100])),
            Want::Size(64, 48),
        ),
        (
            "twice_as_long",
            with(&|f| f.data.extend(good.data.clone())),
            Want::Size(64, 48),
        ),
        (
            "zero_width",
            with(&|f| f.width = 0),
            Want::Err("frame size 0x48"),
        ),
        (
            "zero_height",
            with(&|f| f.height = 0),
            Want::Err("frame size 64x0"),
        ),
        (
            "stride_too_small",
            with(&|f| f.stride = 100),
            Want::Err("line stride 100"),
        ),
        // stride x height wraps around to 0 bytes.
        (
            "stride_wraps",
            with(&|f| (f.stride, f.data) = (1 << 60, Vec::new())),
            Want::Err("line stride 1152921504606846976"),
        ),
        (
            "width_wraps",
            with(&|f| (f.width, f.height, f.stride, f.data) = (1 << 62, 4, 1 << 63, Vec::new())),
            Want::Err("frame size 4611686018427387904x4"),
        ),
        (
            "huge",
            with(&|f| (f.width, f.height) = (100_000, 100_000)),
            Want::Err("frame size 100000x100000"),
        ),
        (
            "jpeg_of_another_size",
            // Decoded and preprocessed at its own 32x24 (the frame announced 64x48).
            mjpeg(encode::encode(&picture(32, 24), 32, 24, PixelFormat::Mjpeg).unwrap()),
            Want::Size(64, 48),
        ),
        (
            "jpeg_bomb",
            mjpeg(jpeg_claiming(12_000, 12_000)),
            Want::Err("cannot hold a 12000x12000 picture"),
        ),
        (
            "jpeg_too_short_for_its_size",
            Frame::new(PixelFormat::Mjpeg, 1920, 1080, jpeg_claiming(1920, 1080)),
            Want::Err("cannot hold a 1920x1080 picture"),
        ),
        (
            "jpeg_garbage",
            mjpeg(garbage),
            Want::Err("corrupt MJPEG frame"),
        ),
        (
            "jpeg_empty",
            mjpeg(Vec::new()),
            Want::Err("not a JPEG (0 bytes"),
        ),
    ];
    let mut out = Tensor::zeros(DType::F32, &[1, 3, 32, 32]);
    let mut failures = Vec::new();
    for (name, frame, want) in &cases {
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let spec = PreprocessSpec::parse("crop=32,mean=0,std=255").unwrap();
            let mut pre = CpuPreprocessor::new(spec, target(3))?;
            pre.run(frame, out.bytes_mut())?;
            Ok((frame.width, frame.height))
        }));
        judge(name, got, want, &mut failures);
    }
    report(failures);
}

/// What a source gives on successive calls, until its end (at most 6 calls): `WxH` per frame
/// (checked), `error: ...` per bad frame, `end`.
fn stream(spec: &str) -> Vec<String> {
    let mut source = match capture::open(spec) {
        Ok(s) => s,
        Err(e) => return vec![format!("open error: {e}")],
    };
    let mut frame = Frame::empty();
    let mut seen = Vec::new();
    for _ in 0..6 {
        match source.next_frame(&mut frame).and_then(|more| {
            if more {
                frame.check()?;
            }
            Ok(more)
        }) {
            Ok(true) => seen.push(format!("{}x{}", frame.width, frame.height)),
            Ok(false) => {
                seen.push("end".into());
                break;
            }
            Err(e) => seen.push(format!("error: {e}")),
        }
    }
    seen
}

#[test]
fn raw_frame_files_stream_or_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let frame = vec![128u8; 16 * 8 * 2];
    let ok = file("ok.yuyv", &[&frame[..], &frame[..], &frame[..100]].concat());
    let folder = dir.path().join("folder.yuyv");
    std::fs::create_dir(&folder).unwrap();
    // Each call's outcome must contain its text.
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("{ok}:16x8"),
            vec!["16x8", "16x8", "short frame", "end"],
        ),
        (
            format!("{}:16x8", file("empty.yuyv", &[])),
            vec!["empty.yuyv: empty file"],
        ),
        (
            format!("{}:rgb24:1024x1024", file("tiny.raw", &[1; 10])),
            vec!["holds 10 bytes, less than one 1024x1024 rgb24 frame (3145728 bytes)"],
        ),
        (
            format!("{ok}:100000x100000"),
            vec!["100000x100000: each side must be 1 to 16384"],
        ),
        // 2^33 bytes a line times 2^32 lines wraps around to 0 bytes a frame.
        (
            format!("{ok}:4294967296x4294967296"),
            vec!["4294967296x4294967296: each side must be 1 to 16384"],
        ),
        // A folder reads as an I/O error: one, then the stream ends.
        (format!("{}:16x8", folder.display()), vec!["error: ", "end"]),
        (
            format!("{}:mjpeg:16x8", file("empty.mjpeg", &[])),
            vec!["empty file"],
        ),
        (
            format!("{}:mjpeg:16x8", file("junk.mjpeg", b"not a jpeg")),
            vec!["error: not a JPEG", "end"],
        ),
    ];
    let mut failures = Vec::new();
    for (spec, want) in &cases {
        let got = std::panic::catch_unwind(|| stream(spec));
        println!("{spec}: {got:?}");
        let ok = got.as_ref().is_ok_and(|got| {
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g.contains(w))
        });
        if !ok {
            failures.push(format!("{spec}: want {want:?}, got {got:?}"));
        }
    }
    report(failures);
}

/// A spec from the `key=value` form, or from JSON as a `.efm` stores it (starting with `{`).
fn spec_from(text: &str) -> edgefuse_runtime::Result<PreprocessSpec> {
    if text.starts_with('{') {
        serde_json::from_str(text).map_err(|e| edgefuse_runtime::Error::invalid(e.to_string()))
    } else {
        PreprocessSpec::parse(text)
    }
}

#[test]
fn preprocessing_specs_and_targets_run_or_name_what_is_wrong() {
    let t = |width, height, channels, dtype| Target {
        width,
        height,
        channels,
        dtype,
        quant: Default::default(),
    };
    let rgb = t(32, 32, 3, DType::F32);
    let cases: Vec<(&str, Target, Want)> = vec![
        ("crop=32,mean=127,std=128", rgb, Want::Size(32, 32)),
        ("fit=letterbox,pad=114,std=-1", rgb, Want::Size(32, 32)),
        (
            "color=gray,crop=32",
            t(32, 32, 1, DType::F32),
            Want::Size(32, 32),
        ),
        ("crop=32,std=0", rgb, Want::Err("must not be zero")),
        ("crop=32,scale=0", rgb, Want::Err("std")),
        ("crop=32,std=nan", rgb, Want::Err("finite")),
        ("crop=32,std=1e-40", rgb, Want::Err("std=1e-40")),
        (
            "crop=32,mean=3e38,std=0.1",
            rgb,
            Want::Err("mean=3e38, std=0.1 (channel 0): pixel value 0"),
        ),
        ("crop=32,std=1/1/1e-39", rgb, Want::Err("channel 2")),
        ("fit=letterbox,pad=nan", rgb, Want::Err("pad=NaN")),
        ("fit=letterbox,pad=inf", rgb, Want::Err("pad=inf")),
        (
            "fit=letterbox,pad=3e38,std=0.5",
            rgb,
            Want::Err("std=0.5 (channel 0): pad=3e38"),
        ),
        ("crop=100000", rgb, Want::Err("crop=100000x100000")),
        (
            "resize=4000000000,crop=32",
            rgb,
            Want::Err("resize=4000000000"),
        ),
        (r#"{"std":[1e-40]}"#, rgb, Want::Err("std=1e-40")),
        (
            r#"{"pad":1e39,"fit":"letterbox"}"#,
            rgb,
            Want::Err("pad=inf"),
        ),
        (r#"{"mean":[]}"#, rgb, Want::Err("mean")),
        (r#"{"crop":[0,5]}"#, rgb, Want::Err("positive")),
        // The target disagreeing with the spec.
        ("crop=32", t(32, 32, 1, DType::F32), Want::Err("1 channels")),
        ("color=gray,crop=32", rgb, Want::Err("3 channels")),
        ("crop=32", t(0, 32, 3, DType::F32), Want::Err("0x32")),
        ("crop=32", t(16, 32, 3, DType::F32), Want::Err("16x32")),
        ("crop=32", t(32, 32, 3, DType::I64), Want::Err("i64")),
        (
            "crop=32,mean=127,std=128",
            t(32, 32, 3, DType::F16),
            Want::Size(32, 32),
        ),
        (
            "crop=32,std=0.001",
            t(32, 32, 3, DType::F16),
            Want::Err("pixel value 255 normalises beyond f16"),
        ),
    ];
    let good = frame(PixelFormat::Yuyv, 64, 48);
    let mut failures = Vec::new();
    for (text, target, want) in &cases {
        let got = std::panic::catch_unwind(|| {
            let mut pre = CpuPreprocessor::new(spec_from(text)?, *target)?;
            let shape = [1, target.channels, target.height, target.width];
            let mut out = Tensor::zeros(target.dtype, &shape);
            pre.run(&good, out.bytes_mut())?;
            if out.to_f32_vec().unwrap().iter().any(|v| !v.is_finite()) {
                return Err(edgefuse_runtime::Error::invalid("non-finite output"));
            }
            Ok((target.width, target.height))
        });
        let t = target;
        let name = format!(
            "{text} -> {}x{}x{} {}",
            t.width, t.height, t.channels, t.dtype
        );
        judge(&name, got, want, &mut failures);
    }
    // An integer input's quantization, from the model.
    let quant = |scale: f32, zero_point: i32| QuantParams {
        scale: vec![scale],
        zero_point: vec![zero_point],
        axis: None,
    };
    let spec = PreprocessSpec::parse("crop=32").unwrap();
    for (dtype, q, want) in [
        (DType::U8, quant(0.5, 10), Want::Size(32, 32)),
        (DType::I8, quant(1.0, -128), Want::Size(32, 32)),
        (DType::U8, quant(0.0, 0), Want::Err("scale 0")),
        (DType::U8, quant(f32::NAN, 0), Want::Err("scale NaN")),
        (DType::U8, quant(-1.0, 0), Want::Err("scale -1")),
        (DType::U8, quant(1.0, 300), Want::Err("zero point 300")),
        (DType::I8, quant(1.0, 128), Want::Err("zero point 128")),
    ] {
        let info = TensorInfo {
            name: "image".into(),
            dtype,
            shape: vec![1, 3, 32, 32],
            weight: None,
            quant: Some(q.clone()),
        };
        let got = std::panic::catch_unwind(|| {
            let t = Target::for_input(&spec, &info)?;
            Ok((t.width, t.height))
        });
        judge(&format!("{dtype} {q:?}"), got, &want, &mut failures);
    }
    report(failures);
}

/// A source that delivers one good frame and then panics.
struct Panicking(u64);

impl capture::FrameSource for Panicking {
    fn describe(&self) -> String {
        "panicking".into()
    }
    fn next_frame(&mut self, f: &mut Frame) -> edgefuse_runtime::Result<bool> {
        self.0 += 1;
        assert!(self.0 < 2, "a bug in the source");
        *f = frame(PixelFormat::Grey, 4, 4);
        Ok(true)
    }
}

#[test]
fn a_source_that_panics_is_an_error_not_the_end_of_the_stream() {
    use edgefuse_runtime::capture::thread::{CaptureOptions, CaptureThread};
    let capture = CaptureThread::spawn(
        Box::new(Panicking(0)),
        CaptureOptions::default(),
        Default::default(),
    );
    let mut seen = Vec::new();
    while let Some(c) = capture.next() {
        seen.push(c.result.map_err(|e| e.to_string()));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].is_ok(), "{seen:?}");
    let e = seen[1].as_ref().unwrap_err();
    assert!(
        e.contains("panicking: the frame source panicked: a bug in the source"),
        "{e}"
    );
}

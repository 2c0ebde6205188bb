//! The camera path without a camera: every pixel format through the one decode + preprocess
//! path against an independent reference, bad frames, the V4L2 source where a camera exists,
//! and `edgefuse classify` end to end (JSON shape, top-1 equal to `edgefuse run`).

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use edgefuse_runtime::capture::thread::{CaptureOptions, CaptureThread};
use edgefuse_runtime::capture::{self, encode, memory::MemorySource, Frame, PixelFormat};
use edgefuse_runtime::preprocess::{CpuPreprocessor, PreprocessSpec, Target};
use edgefuse_runtime::DType;

/// A reference photograph as packed RGB24, or None (skipped) without ../shared.
fn photo(name: &str) -> Option<(Vec<u8>, usize, usize)> {
    let dir = common::models_dir()?.join("../data/images");
    let mut f = Frame::empty();
    capture::image::load(&dir.join(name), &mut f).unwrap();
    Some((f.data, f.width, f.height))
}

/// Straightforward decode of a raw frame to RGB in f64 (BT.601 limited range, chroma of the
/// pixel's own 2x1 or 2x2 block), written independently of the runtime's sampler.
fn reference_rgb(format: PixelFormat, d: &[u8], w: usize, h: usize) -> Vec<[f64; 3]> {
    let yuv = |y: u8, u: u8, v: u8| {
        let (c, d, e) = (y as f64 - 16.0, u as f64 - 128.0, v as f64 - 128.0);
        [
            1.164383 * c + 1.596027 * e,
            1.164383 * c - 0.391762 * d - 0.812968 * e,
            1.164383 * c + 2.017232 * d,
        ]
        .map(|x| x.clamp(0.0, 255.0))
    };
    let mut out = vec![[0.0; 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = match format {
                PixelFormat::Yuyv => {
                    let p = &d[y * w * 2 + (x / 2) * 4..][..4];
                    yuv(p[(x % 2) * 2], p[1], p[3])
                }
                PixelFormat::Uyvy => {
                    let p = &d[y * w * 2 + (x / 2) * 4..][..4];
                    yuv(p[1 + (x % 2) * 2], p[0], p[2])
                }
                PixelFormat::Nv12 => {
                    let c = &d[w * h + (y / 2) * w + (x / 2) * 2..][..2];
                    yuv(d[y * w + x], c[0], c[1])
                }
                PixelFormat::Rgb24 => [0, 1, 2].map(|c| d[(y * w + x) * 3 + c] as f64),
                PixelFormat::Bgr24 => [2, 1, 0].map(|c| d[(y * w + x) * 3 + c] as f64),
                PixelFormat::Grey => [d[y * w + x] as f64; 3],
                PixelFormat::Mjpeg => unreachable!(),
            };
        }
    }
    out
}

/// torchvision Resize(short side `resize`) (bilinear, half-pixel centres, no antialias, as
/// OpenCV INTER_LINEAR) + CenterCrop(crop), as CHW in 0..255, from a whole RGB image.
fn reference_resize_crop(
    rgb: &[[f64; 3]],
    w: usize,
    h: usize,
    resize: usize,
    crop: usize,
) -> Vec<f64> {
    let (rw, rh) = if w <= h {
        (resize, (resize as f64 * h as f64 / w as f64) as usize)
    } else {
        ((resize as f64 * w as f64 / h as f64) as usize, resize)
    };
    let left = ((rw - crop) as f64 / 2.0).round_ties_even() as usize;
    let top = ((rh - crop) as f64 / 2.0).round_ties_even() as usize;
    let tap = |o: usize, src: usize, dst: usize| {
        let s = ((o as f64 + 0.5) * src as f64 / dst as f64 - 0.5).max(0.0);
        let i = (s.floor() as usize).min(src - 1);
        let f = if i >= src - 1 { 0.0 } else { s - i as f64 };
        (i, (i + 1).min(src - 1), f)
    };
    let mut out = vec![0.0; 3 * crop * crop];
    for oy in 0..crop {
        let (y0, y1, fy) = tap(oy + top, h, rh);
        for ox in 0..crop {
            let (x0, x1, fx) = tap(ox + left, w, rw);
            for c in 0..3 {
                let p = |x: usize, y: usize| rgb[y * w + x][c];
                let v = (1.0 - fy) * ((1.0 - fx) * p(x0, y0) + fx * p(x1, y0))
                    + fy * ((1.0 - fx) * p(x0, y1) + fx * p(x1, y1));
                out[c * crop * crop + oy * crop + ox] = v;
            }
        }
    }
    out
}

fn target(crop: usize) -> Target {
    Target {
        width: crop,
        height: crop,
        channels: 3,
        dtype: DType::F32,
        quant: Default::default(),
    }
}

fn preprocess(pre: &mut CpuPreprocessor, frame: &Frame) -> edgefuse_runtime::Result<Vec<f32>> {
    let t = *pre.target();
    let mut out = edgefuse_runtime::Tensor::zeros(DType::F32, &[1, t.channels, t.height, t.width]);
    pre.run(frame, out.bytes_mut())?;
    Ok(out.to_f32_vec().unwrap())
}

#[test]
fn every_pixel_format_matches_the_reference_within_one_level() {
    let Some(p) = photo("chelsea.png") else {
        return;
    };
    // Even sizes so every format holds the whole image; pixel units (mean 0, std 1).
    let (w, h) = (p.1 & !1, p.2 & !1);
    let rgb = photo_even(&p);
    let spec = PreprocessSpec::parse("resize=256,crop=224,mean=0,std=1").unwrap();
    let mut pre = CpuPreprocessor::new(spec, target(224)).unwrap();
    let mut from_rgb = None;
    for format in PixelFormat::ALL {
        let data = encode::encode(&rgb, w, h, format).unwrap();
        let frame = Frame::new(format, w, h, data.clone());
        let got = preprocess(&mut pre, &frame).unwrap();
        let reference_input = match format {
            PixelFormat::Mjpeg => {
                let img = image::load_from_memory(&data).unwrap().into_rgb8();
                reference_rgb(PixelFormat::Rgb24, img.as_raw(), w, h)
            }
            f => reference_rgb(f, &data, w, h),
        };
        let want = reference_resize_crop(&reference_input, w, h, 256, 224);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, r)| (*g as f64 - r).abs())
            .fold(0.0, f64::max);
        println!("{format}: max |preprocess - reference| = {worst:.4} (of 255)");
        assert!(worst <= 1.0, "{format}: off by {worst} levels of 255");
        // Every format shows the same picture: close to the RGB24 path on average.
        if format == PixelFormat::Rgb24 {
            from_rgb = Some(got.clone());
        }
    }
    let base = from_rgb.unwrap();
    for format in PixelFormat::ALL {
        let frame = Frame::new(format, w, h, encode::encode(&rgb, w, h, format).unwrap());
        let got = preprocess(&mut pre, &frame).unwrap();
        let mean: f64 = got
            .iter()
            .zip(&base)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / got.len() as f64;
        let limit = if format == PixelFormat::Grey {
            40.0
        } else {
            3.0
        };
        assert!(
            mean < limit,
            "{format} differs from rgb24 by {mean} levels on average"
        );
    }
}

/// The photo cropped to even width and height.
fn photo_even((rgb, w, h): &(Vec<u8>, usize, usize)) -> Vec<u8> {
    let (ew, eh) = (w & !1, h & !1);
    (0..eh)
        .flat_map(|y| rgb[y * w * 3..y * w * 3 + ew * 3].to_vec())
        .collect()
}

#[test]
fn layouts_colours_and_types_are_consistent() {
    let Some(p) = photo("coffee.png") else { return };
    let (w, h) = (p.1 & !1, p.2 & !1);
    let rgb = photo_even(&p);
    let frame = Frame::new(
        PixelFormat::Yuyv,
        w,
        h,
        encode::encode(&rgb, w, h, PixelFormat::Yuyv).unwrap(),
    );
    let run = |text: &str, dtype: DType| {
        let spec = PreprocessSpec::parse(text).unwrap();
        let c = spec.channels();
        let t = Target {
            width: 64,
            height: 48,
            channels: c,
            dtype,
            quant: Default::default(),
        };
        let mut pre = CpuPreprocessor::new(spec, t).unwrap();
        let mut out = edgefuse_runtime::Tensor::zeros(dtype, &[1, c, 48, 64]);
        pre.run(&frame, out.bytes_mut()).unwrap();
        out.to_f32_vec()
            .unwrap_or_else(|_| out.bytes().iter().map(|&b| b as f32).collect())
    };
    let nchw = run("crop=64x48,mean=127,std=128", DType::F32);
    let nhwc = run("crop=64x48,mean=127,std=128,layout=nhwc", DType::F32);
    let bgr = run("crop=64x48,mean=127,std=128,color=bgr", DType::F32);
    let f16 = run("crop=64x48,mean=127,std=128", DType::F16);
    let u8s = run("crop=64x48", DType::U8);
    let plane = 64 * 48;
    for i in 0..plane {
        for c in 0..3 {
            assert_eq!(nchw[c * plane + i], nhwc[i * 3 + c]);
            assert_eq!(nchw[c * plane + i], bgr[(2 - c) * plane + i]);
            assert!((nchw[c * plane + i] - f16[c * plane + i]).abs() < 1e-3);
            assert!((nchw[c * plane + i] * 128.0 + 127.0 - u8s[c * plane + i]).abs() <= 0.5 + 1e-3);
        }
    }
    // Letterbox pads with the pad value; area averaging stays within the image's range.
    let lb = run("crop=64x48,fit=letterbox,pad=7", DType::F32);
    assert_eq!(lb.len(), 3 * plane);
    let area = run("crop=64x48,interp=area", DType::F32);
    assert!(area.iter().all(|v| (0.0..=255.0).contains(v)));
}

#[test]
fn bad_frames_give_errors_and_the_stream_goes_on() {
    let (w, h) = (64, 48);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    let good = Frame::new(
        PixelFormat::Yuyv,
        w,
        h,
        encode::encode(&rgb, w, h, PixelFormat::Yuyv).unwrap(),
    );
    let mut short = good.clone();
    short.data.truncate(1000);
    let jpeg = encode::encode(&rgb, w, h, PixelFormat::Mjpeg).unwrap();
    let mut corrupt = Frame::new(PixelFormat::Mjpeg, w, h, jpeg[..jpeg.len() / 3].to_vec());
    corrupt.data.extend_from_slice(&[0x00; 64]);
    let mut wrong_size = good.clone();
    (wrong_size.width, wrong_size.stride) = (128, 256);
    let not_jpeg = Frame::new(PixelFormat::Mjpeg, w, h, vec![1, 2, 3, 4, 5]);
    let frames = vec![
        good.clone(),
        short,
        good.clone(),
        corrupt,
        wrong_size,
        not_jpeg,
        good,
    ];
    let capture = CaptureThread::spawn(
        Box::new(MemorySource::new(frames)),
        CaptureOptions::default(),
        Arc::new(AtomicBool::new(false)),
    );
    let spec = PreprocessSpec::parse("crop=32,mean=0,std=255").unwrap();
    let mut pre = CpuPreprocessor::new(spec, target(32)).unwrap();
    let mut outcome = Vec::new();
    while let Some(c) = capture.next() {
        let r = c
            .result
            .and_then(|()| preprocess(&mut pre, &c.frame).map(|_| ()));
        if let Err(e) = &r {
            println!("frame {}: {e}", c.frame.index);
        }
        outcome.push(r.is_ok());
        capture.recycle(c.frame);
    }
    assert_eq!(outcome, vec![true, false, true, false, false, false, true]);
}

#[test]
fn raw_frame_file_reports_a_short_last_frame() {
    let dir = common::scratch_dir();
    let path = dir.join("short.yuyv");
    let frame = vec![128u8; 16 * 8 * 2];
    let mut data = [frame.clone(), frame.clone()].concat();
    data.extend_from_slice(&frame[..100]);
    std::fs::write(&path, &data).unwrap();
    let mut src = capture::open(&format!("{}:16x8", path.display())).unwrap();
    let mut f = Frame::empty();
    assert!(src.next_frame(&mut f).unwrap());
    assert!(src.next_frame(&mut f).unwrap());
    let e = src.next_frame(&mut f).unwrap_err().to_string();
    assert!(e.contains("short frame"), "{e}");
    assert!(!src.next_frame(&mut f).unwrap());
    assert!(src.rewind() && src.next_frame(&mut f).unwrap());
}

#[test]
fn v4l2_camera_when_present() {
    let cams: Vec<_> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("video"))
                })
                .collect()
        })
        .unwrap_or_default();
    if cams.is_empty() {
        eprintln!("SKIPPED: no /dev/video* on this machine; the V4L2 source was not exercised");
        return;
    }
    if !cfg!(feature = "v4l") {
        eprintln!(
            "SKIPPED: {} camera(s) present but this test was built without --features v4l",
            cams.len()
        );
        return;
    }
    let mut delivered = 0;
    for cam in &cams {
        let Ok(mut src) = capture::open(&cam.display().to_string()) else {
            continue;
        };
        let mut f = Frame::empty();
        for _ in 0..3 {
            if src.next_frame(&mut f).unwrap_or(false) && f.check().is_ok() {
                delivered += 1;
            }
        }
        println!("{}: {}", cam.display(), src.describe());
    }
    assert!(
        delivered > 0,
        "no /dev/video* device delivered a frame: {cams:?}"
    );
}

/// Compiles EfficientNet-Lite0 with its preprocessing and labels (once per test binary).
fn efficientnet(models: &Path) -> std::path::PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = common::scratch_dir().join("effnet_pre.efm");
    if !out.exists() {
        let o = common::edgefuse()
            .arg("compile")
            .arg(models.join("efficientnet_lite0.onnx"))
            .args([
                "-o",
                out.to_str().unwrap(),
                "--input",
                "input=1x3x224x224",
                "--preprocess",
                "efficientnet_lite0",
            ])
            .arg("--labels")
            .arg(models.join("../data/imagenet_labels_1000.txt"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    out
}

#[test]
fn classify_json_shape_and_top1_equals_run() {
    let Some(models) = common::models_dir() else {
        return;
    };
    let Some((rgb, w, h)) = photo("cat_1080p.jpg") else {
        return;
    };
    assert_eq!((w, h), (1920, 1080));
    let efm = efficientnet(&models);
    let dir = common::scratch_dir();
    let clip = dir.join("cat.yuyv");
    let mut data = encode::encode(&rgb, w, h, PixelFormat::Yuyv).unwrap();
    data.extend_from_slice(&data.clone()[..5000]); // a short second frame: an error, then the end
    std::fs::write(&clip, &data).unwrap();
    let input = dir.join("classify_input.npy");
    let o = common::edgefuse()
        .args([
            "classify",
            efm.to_str().unwrap(),
            "--json",
            "--top",
            "3",
            "--source",
        ])
        .arg(format!("{}:1920x1080", clip.display()))
        .arg("--save-input")
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let f = &lines[0];
    assert_eq!(f["frame"], 0);
    assert!(f["source"].as_str().unwrap().contains("cat.yuyv"));
    let top = f["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for t in top {
        assert!(t["index"].is_u64() && t["label"].is_string() && t["score"].is_f64());
    }
    for k in ["capture", "preprocess", "infer"] {
        assert!(f["timings_ms"][k].as_f64().unwrap() >= 0.0, "{k}");
    }
    assert!(
        lines[1]["error"].as_str().unwrap().contains("short frame"),
        "{}",
        lines[1]
    );
    let label = top[0]["label"].as_str().unwrap();
    assert!(
        ["tiger cat", "tabby", "Egyptian cat"].contains(&label),
        "top-1 {label}"
    );

    // `run` on the same model input gives the same top-1.
    let out = dir.join("classify_run");
    let o = common::edgefuse()
        .args(["run", efm.to_str().unwrap(), "--input"])
        .arg(format!("input={}", input.display()))
        .arg("--output-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let npy = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let logits: Vec<f32> = npyz::NpyFile::new(&std::fs::read(npy).unwrap()[..])
        .unwrap()
        .into_vec()
        .unwrap();
    let best = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap();
    assert_eq!(best as u64, top[0]["index"].as_u64().unwrap());
}

#[test]
fn classify_text_output_on_the_demo_folder() {
    let Some(models) = common::models_dir() else {
        return;
    };
    let efm = efficientnet(&models);
    let o = common::edgefuse()
        .args(["classify", efm.to_str().unwrap(), "--top", "1", "--source"])
        .arg(common::repo_root().join("examples/demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    println!("{stdout}");
    assert!(stdout.contains("4 frames, 0 errors"), "{stdout}");
    for label in ["cat", "espresso", "hotdog"] {
        assert!(stdout.contains(label), "{label} missing:\n{stdout}");
    }
}

#[test]
fn bad_sources_and_specs_are_one_clear_error() {
    let Some(models) = common::models_dir() else {
        return;
    };
    let efm = efficientnet(&models);
    for (args, needle) in [
        (vec!["--source", "/nonexistent/x.png"], "no such file"),
        (
            vec!["--source", "Cargo.toml"],
            "raw frame file needs its size",
        ),
        (
            vec!["--source", "synthetic", "--preprocess", "crop=100"],
            "crops 100x100",
        ),
        (
            vec!["--source", "synthetic", "--preprocess", "resnet"],
            "unknown preset",
        ),
    ] {
        let o = common::edgefuse()
            .arg("classify")
            .arg(&efm)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = common::edgefuse()
        .arg("classify")
        .arg(&efm)
        .args([
            "--source",
            "synthetic:320x240:nv12",
            "--frames",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
}

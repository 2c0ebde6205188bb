//! Times the fused CPU preprocessing on a 1920x1080 YUYV frame (made from
//! `../shared/data/images/cat_1080p.jpg`): resize-256 → crop 224 → normalised f32 NCHW.
//! `scripts/bench-preprocess.py` runs this beside OpenCV (with `RAYON_NUM_THREADS` = THREADS);
//! prints one JSON line.
//!
//! ```text
//! cargo run --release --example preprocess_bench -- [ITERS] [THREADS]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use edgefuse_runtime::capture::{encode, Frame, PixelFormat};
use edgefuse_runtime::preprocess::{CpuPreprocessor, PreprocessSpec, Target};
use edgefuse_runtime::{DType, Tensor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iters: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let threads: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let shared = std::env::var_os("EDGEFUSE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let mut rgb = Frame::empty();
    edgefuse_runtime::capture::image::load(&shared.join("data/images/cat_1080p.jpg"), &mut rgb)?;
    let (w, h) = (rgb.width, rgb.height);
    let frame = Frame::new(
        PixelFormat::Yuyv,
        w,
        h,
        encode::encode(&rgb.data, w, h, PixelFormat::Yuyv)?,
    );
    let spec = PreprocessSpec::parse("resize=256,crop=224,mean=127,std=128")?;
    let target = Target {
        width: 224,
        height: 224,
        channels: 3,
        dtype: DType::F32,
        quant: Default::default(),
    };
    let mut pre = CpuPreprocessor::new(spec, target)?;
    pre.set_threads(threads);
    let mut out = Tensor::zeros(DType::F32, &[1, 3, 224, 224]);
    for _ in 0..20 {
        pre.run(&frame, out.bytes_mut())?;
    }
    let mut times: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            pre.run(&frame, out.bytes_mut()).expect("preprocess");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let sum: f64 = out.to_f32_vec()?.iter().map(|&v| v as f64).sum();
    println!(
        "{{\"impl\": \"edgefuse\", \"threads\": {threads}, \"iters\": {iters}, \"median_ms\": {:.4}, \"p10_ms\": {:.4}, \"checksum\": {sum:.3}}}",
        times[iters / 2],
        times[iters / 10]
    );
    Ok(())
}

//! No heap allocation per frame in the CPU preprocessing step (after the first frame of a size):
//! a counting global allocator around `CpuPreprocessor::run`, 1 and 2 threads.

use std::sync::atomic::Ordering;

use edgefuse_runtime::capture::{encode, Frame, PixelFormat};
use edgefuse_runtime::preprocess::{CpuPreprocessor, PreprocessSpec, Target};
use edgefuse_runtime::{DType, Tensor};

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn preprocessing_allocates_nothing_per_frame() {
    let (w, h) = (640, 360);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 31 % 253) as u8).collect();
    // Every preprocessor lives to the end: a dropped one's pool threads exit (and free and
    // allocate thread-local state) concurrently, which the global counter would see.
    let mut keep = Vec::new();
    for format in [PixelFormat::Yuyv, PixelFormat::Nv12, PixelFormat::Rgb24] {
        let frame = Frame::new(format, w, h, encode::encode(&rgb, w, h, format).unwrap());
        for threads in [1, 2] {
            let spec = PreprocessSpec::parse("resize=256,crop=224,mean=127,std=128").unwrap();
            let t = Target {
                width: 224,
                height: 224,
                channels: 3,
                dtype: DType::F32,
                quant: Default::default(),
            };
            let mut pre = CpuPreprocessor::new(spec, t).unwrap();
            pre.set_threads(threads);
            let mut out = Tensor::zeros(DType::F32, &[1, 3, 224, 224]);
            pre.run(&frame, out.bytes_mut()).unwrap(); // sizes the tables and scratch, starts threads
            pre.run(&frame, out.bytes_mut()).unwrap();
            ALLOCS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            for _ in 0..100 {
                pre.run(&frame, out.bytes_mut()).unwrap();
            }
            COUNTING.store(false, Ordering::SeqCst);
            let n = ALLOCS.load(Ordering::SeqCst);
            assert_eq!(
                n, 0,
                "{format}, {threads} thread(s): {n} allocations in 100 frames"
            );
            keep.push(pre);
        }
    }
}

//! `cargo bench -p edgefuse-kernels --bench sgemm`: our SGEMM against the `gemm` crate on the
//! shapes edgefuse's models produce, 1 and 2 threads, median microseconds per call.
//!
//! Columns: `ours` (sgemm), `packed` (sgemm_packed with A pre-packed, as a conv kernel with
//! constant weights would call it), `gemm` (the gemm crate 0.18), and the ratio gemm/ours.
//! `EDGEFUSE_BENCH_MS` sets the time budget per measurement (default 300 ms).

use std::time::{Duration, Instant};

use edgefuse_kernels::gemm::{pack_a, sgemm, sgemm_packed, Kernel, MatRef};

/// (label, m, n, k): conv-as-GEMM is M = Cout, N = H·W, K = Cin·kh·kw.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("conv 3x3 mnist", 32, 676, 9),
    ("conv 3x3 mnist-2", 64, 121, 288),
    ("effnet stem 3x3", 32, 12544, 27),
    ("conv 24x144", 24, 12544, 144),
    ("1x1 96x16", 96, 12544, 16),
    ("1x1 320x1152", 320, 49, 1152),
    ("1x1 1280x320", 1280, 49, 320),
    ("gemm b1 576->64", 1, 64, 576),
    ("gemm b1 1280->1000", 1, 1000, 1280),
    ("gemm b16 576->64", 16, 64, 576),
    ("lstm step h128", 1, 512, 128),
    ("lstm step h512", 1, 2048, 512),
    ("lstm proj 20x128", 20, 512, 128),
];

fn median_us(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 7 || (start.elapsed() < budget && times.len() < 2000) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[times.len() / 2]
}

fn theirs(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: dense row-major a (m × k), b (k × n), c (m × n), all of those lengths.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn main() {
    let ms = std::env::var("EDGEFUSE_BENCH_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let budget = Duration::from_millis(ms);
    println!("kernel: {:?}", Kernel::detect());
    println!("| shape | m×n×k | thr | ours µs | packed µs | gemm µs | gemm/ours | ours GFLOP/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for &(label, m, n, k) in SHAPES {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut c = vec![0.0f32; m * n];
            let (av, bv) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
            let packed = pack_a(av, m, k);
            let (ours, pk, them) = pool.install(|| {
                let ours = median_us(budget, || {
                    sgemm(m, n, k, av, bv, &mut c, n, 0.0, 1.0, threads)
                });
                let pk = median_us(budget, || {
                    sgemm_packed(&packed, bv, &mut c, n, 0.0, 1.0, threads)
                });
                let them = median_us(budget, || theirs(m, n, k, &a, &b, &mut c, threads));
                (ours, pk, them)
            });
            let gflops = 2.0 * (m * n * k) as f64 / ours / 1e3;
            println!(
                "| {label} | {m}×{n}×{k} | {threads} | {ours:.1} | {pk:.1} | {them:.1} | {:.2} | {gflops:.1} |",
                them / ours
            );
        }
    }
}

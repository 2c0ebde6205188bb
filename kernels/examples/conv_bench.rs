//! Times the seed CNN's convolution shapes through the kernels that run them, at 1 and 2
//! threads: `cargo run --release -p edgefuse-kernels --example conv_bench`.

use std::time::Instant;

use edgefuse_kernels::conv::{
    im2col, im2col_images, DepthwisePlan, DirectConv, Window2d, Winograd,
};
use edgefuse_kernels::gemm::{pack_a, pack_b, sgemm_packed, sgemm_packed_b, MatRef};
use edgefuse_kernels::qgemm::{Epilogue, OutKind, QKernel, QWeights, Source};

/// The 10th percentile: steadier than the median on a shared machine.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 10]
}

fn time(iters: usize, f: impl FnMut()) -> f64 {
    time_between(iters, || {}, f)
}

/// [`time`] with `between` run, untimed, before each timed run of `f`.
fn time_between(iters: usize, mut between: impl FnMut(), mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let runs: Vec<f64> = (0..iters)
        .map(|_| {
            between();
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    // `CB_MIN=1`: the fastest run, steadier than the median on a noisy machine.
    if std::env::var("CB_MIN").is_ok_and(|v| v == "1") {
        return runs.iter().copied().fold(f64::INFINITY, f64::min);
    }
    median(runs)
}

fn geom(ih: usize, k: usize, pad: usize) -> Window2d {
    let o = ih + 2 * pad - k + 1;
    Window2d {
        ih,
        iw: ih,
        kh: k,
        kw: k,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pt: pad,
        pl: pad,
        pb: pad,
        pr: pad,
        oh: o,
        ow: o,
    }
}

fn main() {
    let fill = |n: usize| {
        (0..n)
            .map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5)
            .collect::<Vec<f32>>()
    };
    let only = std::env::args().nth(1).unwrap_or_default();
    // `CB_THREADS=1` or `2` runs one thread count only; `CB_TILE=4` one Winograd tile.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    for threads in [1usize, 2] {
        if env("CB_THREADS").is_some_and(|t| t != threads) {
            continue;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            // GEMM shapes: (m, k, n).
            for (name, m, k, n) in [("f.6 im2col", 64, 576, 144), ("f.6 lane", 64, 576, 72), ("f.0 im2col", 32, 9, 16 * 676), ("big", 256, 256, 1024), ("d22 im2col", 192, 432, 640), ("d36 im2col", 256, 576, 160), ("en head", 1280, 320, 49), ("en b13 proj", 192, 1152, 49), ("en b13 exp", 1152, 192, 49), ("en b9 proj", 112, 672, 196), ("en b9 exp", 672, 112, 196), ("en b1 exp", 96, 16, 12544), ("en b0 proj", 16, 32, 12544), ("en b2 proj", 24, 144, 3136), ("en b2 exp", 144, 24, 3136), ("sil stft lane", 258, 256, 80), ("sil enc0 lane", 128, 387, 64), ("sil enc1 lane", 64, 384, 32)] {
                if !name.contains(&only) {
                    continue;
                }
                let a = fill(m * k);
                let b = fill(k * n);
                let mut c = vec![0.0f32; m * n];
                let pa = pack_a(MatRef::row_major(&a, m, k), m, k);
                let us = time(200, || sgemm_packed(&pa, MatRef::row_major(&b, k, n), &mut c, n, 0.0, 1.0, threads));
                println!("{threads}T gemm {name:12} {m}x{k}x{n}: {us:8.1} us  {:6.1} GFLOP/s", 2.0 * (m * k * n) as f64 / us / 1e3);
            }
            // Pointwise layers over small planes as the runtime runs them: Yᵀ = Xᵀ·Wᵀ with Wᵀ
            // packed at load and Xᵀ read from the NCHW input (pixels × channels, column stride
            // = pixels). (m out channels, k in channels, n pixels.)
            for (name, m, k, n) in [("en b13 proj T", 192, 1152, 49), ("en b13 exp T", 1152, 192, 49), ("en head T", 1280, 320, 49), ("en b9 proj T", 112, 672, 196), ("en b9 exp T", 672, 112, 196)] {
                if !name.contains(&only) {
                    continue;
                }
                let w = fill(m * k);
                let x = fill(k * n);
                let mut c = vec![0.0f32; n * m];
                let pb = pack_b(MatRef::transposed(&w, k, m), k, m);
                let us = time(200, || sgemm_packed_b(MatRef::transposed(&x, n, k), &pb, &mut c, m, 0.0, 1.0, threads));
                println!("{threads}T gemm {name:12} {m}x{k}x{n}: {us:8.1} us  {:6.1} GFLOP/s", 2.0 * (m * k * n) as f64 / us / 1e3);
                if std::env::var("CB_COLD").is_ok() {
                    // Weights from memory, as in a model whose other weights pass between.
                    let flush = fill(32 << 20 >> 2);
                    let mut sink = 0.0f32;
                    let us = time_between(100, || sink += flush.iter().step_by(16).sum::<f32>(), || sgemm_packed_b(MatRef::transposed(&x, n, k), &pb, &mut c, m, 0.0, 1.0, threads));
                    std::hint::black_box(sink);
                    println!("{threads}T gemm {name:12} {m}x{k}x{n} cold: {us:8.1} us  {:6.1} GFLOP/s", 2.0 * (m * k * n) as f64 / us / 1e3);
                }
            }
            // Silero's 1-D convolutions unfolded for one lane's 16 images, one thread:
            // (channels, input width, window, stride, pad).
            for (name, c, iw, k, s, p) in [("sil unfold stft", 1, 832, 256, 128, 0), ("sil unfold enc0", 129, 4, 3, 1, 1), ("sil unfold enc1", 128, 4, 3, 2, 1), ("sil unfold enc2", 64, 2, 3, 2, 1), ("sil unfold enc3", 64, 1, 3, 1, 1)] {
                if !name.contains(&only) || threads > 1 {
                    continue;
                }
                let ow = (iw + 2 * p - k) / s + 1;
                let g = Window2d { ih: 1, iw, kh: 1, kw: k, sh: 1, sw: s, dh: 1, dw: 1, pt: 0, pl: p, pb: 0, pr: p, oh: 1, ow };
                let images = 16;
                let x = fill(images * c * iw);
                let mut col = vec![0.0f32; c * k * images * ow];
                let us = time(500, || im2col_images(&g, c, &x, c * iw, images, &mut col, images * ow));
                println!("1T {name:16} c{c} w{iw} k{k} s{s}: {us:8.2} us  {:6.2} ns/element", us * 1e3 / col.len() as f64);
            }
            // Depthwise shapes (channels, input side, window, stride), one thread's loop over blocks.
            for (name, c, ih, k, s) in [("dw b0", 32, 112, 3, 1), ("dw b1", 96, 112, 3, 2), ("dw b2", 144, 56, 3, 1), ("dw b3", 144, 56, 5, 2), ("dw b4", 240, 28, 5, 1), ("dw b6", 480, 14, 3, 1), ("dw b9", 672, 14, 5, 1), ("dw b12", 1152, 7, 5, 1), ("dw b15", 1152, 7, 3, 1)] {
                if !name.contains(&only) || threads > 1 {
                    continue;
                }
                let pad = k / 2;
                let o = (ih + 2 * pad - k) / s + 1;
                let mut g = geom(ih, k, pad);
                g.sh = s;
                g.sw = s;
                g.oh = o;
                g.ow = o;
                let plan = DepthwisePlan::new(&g);
                let plans = if plan.is_planar() { vec![("planar", plan), ("blocked", plan.blocked())] } else { vec![("blocked", plan)] };
                for (how, plan) in plans {
                    let (x, w, b) = (fill(c * ih * ih), fill(c * k * k), fill(c));
                    let mut y = vec![0.0f32; c * o * o];
                    let mut sc = vec![0.0f32; plan.scratch_len()];
                    let l = plan.lanes();
                    let us = time(200, || {
                        for c0 in (0..c).step_by(l) {
                            let n = l.min(c - c0);
                            plan.run_block(n, &x[c0 * ih * ih..], &w[c0 * k * k..], Some(&b[c0..]), &mut y[c0 * o * o..], &mut sc);
                        }
                    });
                    let flops = 2.0 * (c * o * o * k * k) as f64;
                    println!("1T {name:8} c{c} {ih}x{ih} k{k} s{s} {how:7}: {us:8.1} us  {:6.1} GFLOP/s", flops / us / 1e3);
                }
            }
            // EfficientNet's stem (3 → 32, 3×3 stride 2, one 224×224 image): pad, then the
            // rows split between the threads.
            if "en stem direct".contains(&only) {
                let mut g = geom(224, 3, 1);
                (g.sh, g.sw, g.oh, g.ow) = (2, 2, 112, 112);
                let (c, m) = (3, 32);
                let (x, w, b) = (fill(c * 224 * 224), fill(m * c * 9), fill(m));
                let mut y = vec![0.0f32; m * g.oh * g.ow];
                let d = DirectConv::new(&w, c, m, g);
                let mut pad = vec![0.0f32; d.scratch_len()];
                let us_pad = time(200, || d.pad_par(&x, &mut pad, threads));
                let us = time(200, || {
                    d.pad_par(&x, &mut pad, threads);
                    d.run_par(&pad, Some(&b), &mut y, Some((0.0, 6.0)), threads);
                });
                let flops = 2.0 * (m * c * 9 * g.oh * g.ow) as f64;
                println!("{threads}T en stem direct: {us:8.1} us ({us_pad:.1} us pad)  {:6.1} GFLOP/s", flops / us / 1e3);
            }
            // The seed CNN's first layer, 16 images, one thread: direct against im2col + GEMM.
            if "f.0 direct".contains(&only) && threads == 1 {
                let g = geom(28, 3, 0);
                let (c, m, n) = (1, 32, 16);
                let (x, w, b) = (fill(n * c * 28 * 28), fill(m * c * 9), fill(m));
                let mut y = vec![0.0f32; n * m * g.oh * g.ow];
                let d = DirectConv::new(&w, c, m, g);
                let mut pad = vec![0.0f32; d.scratch_len()];
                let us = time(200, || {
                    for (xi, yi) in x.chunks_exact(c * 28 * 28).zip(y.chunks_exact_mut(m * g.oh * g.ow)) {
                        d.pad(xi, &mut pad);
                        d.run_rows(&pad, Some(&b), yi, 0..g.oh, None);
                    }
                });
                println!("1T f.0 direct  16 images: {us:8.1} us");
                let pa = pack_a(MatRef::row_major(&w, m, 9), m, 9);
                let mut col = vec![0.0f32; 9 * g.oh * g.ow];
                let us = time(200, || {
                    for (xi, yi) in x.chunks_exact(c * 28 * 28).zip(y.chunks_exact_mut(m * g.oh * g.ow)) {
                        im2col(&g, c, xi, &mut col);
                        sgemm_packed(&pa, MatRef::row_major(&col, 9, g.oh * g.ow), yi, g.oh * g.ow, 0.0, 1.0, 1);
                    }
                });
                println!("1T f.0 im2col  16 images: {us:8.1} us");
            }
            // Constant right operands (fully connected layers): (m, k, n).
            for (name, m, k, n) in [("fc ocr", 20, 512, 8210), ("fc effnet", 1, 1280, 1000)] {
                if !name.contains(&only) {
                    continue;
                }
                let a = fill(m * k);
                let b = fill(k * n);
                let mut c = vec![0.0f32; m * n];
                let pb = pack_b(MatRef::row_major(&b, k, n), k, n);
                let us = time(50, || sgemm_packed_b(MatRef::row_major(&a, m, k), &pb, &mut c, n, 0.0, 1.0, threads));
                println!("{threads}T {name:12} {m}x{k}x{n}: {us:8.1} us  {:6.1} GFLOP/s  {:5.1} GB/s of B", 2.0 * (m * k * n) as f64 / us / 1e3, (k * n * 4) as f64 / us / 1e3);
                // Cold: 32 MB of other data swept between runs, as a model's other weights are,
                // so B comes from memory.
                let flush = fill(32 << 20 >> 2);
                let mut sink = 0.0f32;
                let us = time_between(40, || sink += flush.iter().step_by(16).sum::<f32>(), || sgemm_packed_b(MatRef::row_major(&a, m, k), &pb, &mut c, n, 0.0, 1.0, threads));
                std::hint::black_box(sink);
                println!("{threads}T {name} cold {m}x{k}x{n}: {us:8.1} us  {:5.1} GB/s of B", (k * n * 4) as f64 / us / 1e3);
            }
            for (name, planes, hw) in [("pool f.2", 512usize, 26usize), ("pool f.5", 1024, 11)] {
                if !name.contains(&only) || threads > 1 {
                    continue;
                }
                let mut g = geom(hw, 2, 0);
                (g.sh, g.sw, g.oh, g.ow) = (2, 2, hw / 2, hw / 2);
                let x = fill(planes * hw * hw);
                let mut y = vec![0.0f32; planes * g.oh * g.ow];
                let us = time(500, || edgefuse_kernels::pool::max_pool_planes(&g, planes, &x, &mut y));
                println!("1T {name:16}: {us:8.1} us");
            }
            // ResNet's stem pool: 3×3 stride 2, padded, 64 planes of 112×112 → 56×56, f32 and bytes.
            if "pool resnet".contains(&only) && threads == 1 {
                let mut g = geom(112, 3, 1);
                (g.sh, g.sw, g.oh, g.ow) = (2, 2, 56, 56);
                let planes = 64;
                let x = fill(planes * 112 * 112);
                let mut y = vec![0.0f32; planes * 56 * 56];
                let us = time(100, || edgefuse_kernels::pool::max_pool_planes(&g, planes, &x, &mut y));
                println!("1T pool resnet f32   : {us:8.1} us");
                let xb: Vec<u8> = (0..planes * 112 * 112).map(|i| (i * 7919 % 251) as u8).collect();
                let mut yb = vec![0u8; planes * 56 * 56];
                let us = time(100, || {
                    for (xp, yp) in xb.chunks_exact(112 * 112).zip(yb.chunks_exact_mut(56 * 56)) {
                        edgefuse_kernels::pool::max_pool_u8(&g, xp, 0x80, yp)
                    }
                });
                println!("1T pool resnet bytes : {us:8.1} us");
            }
            if threads == 1 {
                bench_q_depthwise(&only);
            }
            for (name, m, k, hw) in [("q pw 32>16", 16, 32, 112), ("q pw 144>24", 24, 144, 56), ("q pw 96>24", 24, 96, 56), ("q pw 16>96", 96, 16, 112), ("q stem 3>32", 32, 27, 112)] {
                if !name.contains(&only) || threads > 1 {
                    continue;
                }
                let w: Vec<i32> = (0..m * k).map(|i| (i * 31 % 200) as i32 - 100).collect();
                let qw = QWeights::new(QKernel::detect(), &w, m, k, 3);
                let stem = name.contains("stem");
                let (hw_in, g) = if stem {
                    // MobileNetV2's first layer: 3×3 stride 2, TF 'same' (pad 0 before, 1 after).
                    let mut g = geom(224, 3, 0);
                    (g.sh, g.sw, g.pb, g.pr, g.oh, g.ow) = (2, 2, 1, 1, 112, 112);
                    (224, g)
                } else {
                    (hw, geom(hw, 1, 0))
                };
                let ch = if stem { 3 } else { k };
                let x: Vec<u8> = (0..ch * hw_in * hw_in).map(|i| (i * 13 % 251) as u8).collect();
                let epi = Epilogue { mult: vec![0.01; m], add: vec![1.0; m], kind: OutKind::Int { zp: 0.0, lo: 0.0, hi: 255.0 } };
                let mut y = vec![0u8; m * hw * hw];
                let mut scratch = vec![0u8; qw.scratch_bytes()];
                let src = Source::Conv { x: &x, g, channels: ch };
                let us = time(200, || qw.run(&src, 0, hw * hw, &epi, &mut edgefuse_kernels::qgemm::Out::Bytes(&mut y), hw * hw, 1, &mut scratch));
                println!("1T {name:12} m{m} k{k} {hw}x{hw}: {us:8.1} us  {:6.1} GOP/s", 2.0 * (m * k * hw * hw) as f64 / us / 1e3);
            }
            for (name, c, m, ih, iw, pad, images) in [("f.3 wino", 32, 64, 13, 13, 0, 16), ("f.6 wino", 64, 64, 5, 5, 0, 16), ("d22 wino", 48, 192, 16, 40, 1, 1), ("d36 wino", 64, 256, 8, 20, 1, 1)] {
                if !name.contains(&only) {
                    continue;
                }
                let mut g = geom(ih, 3, pad);
                g.iw = iw;
                g.ow = iw + 2 * pad - 2;
                let w = fill(m * c * 9);
                for tile in [0, 2, 4] {
                if env("CB_TILE").is_some_and(|t| t != tile) {
                    continue;
                }
                let wg = if tile == 0 { Winograd::new(&w, c, m, g, images) } else { Winograd::with_tile(&w, c, m, g, tile) };
                let x = fill(images * c * g.ih * g.iw);
                let mut y = vec![0.0f32; images * m * g.oh * g.ow];
                let mut s = vec![0.0f32; wg.scratch_len(images, threads)];
                let us = time(200, || wg.run(images, &x, None, None, None::<fn(f32) -> f32>, &mut y, &mut s, threads));
                let direct = 2.0 * (images * m * c * 9 * g.oh * g.ow) as f64;
                println!("{threads}T {name:12} c{c} m{m} {}x{} x{images} tile {}{}: {us:8.1} us  {:6.1} direct-GFLOP/s", g.ih, g.iw, wg.tile_size(), if tile == 0 { " (chosen)" } else { "" }, direct / us / 1e3);
                }
            }
        });
    }
}

/// MobileNetV2's int8 depthwise layers through the VNNI kernel, one thread (x86-64 with
/// AVX-512 VNNI and VBMI only).
#[cfg(target_arch = "x86_64")]
fn bench_q_depthwise(only: &str) {
    // (name, channels, plane, window, stride)
    for (name, c, hw, k, stride) in [
        ("q dw 960 7x7", 960usize, 7usize, 3usize, 1usize),
        ("q dw 576 14x14", 576, 14, 3, 1),
        ("q dw 144 28x28", 144, 28, 3, 1),
        ("q dw 144 56x56", 144, 56, 3, 1),
        ("q dw 32 112x112", 32, 112, 3, 1),
        ("q dw 96 112x112 s2", 96, 112, 3, 2),
        ("q dw 144 56x56 s2", 144, 56, 3, 2),
        ("q dw 5x5 672 14x14", 672, 14, 5, 1),
        ("q dw 5x5 240 28x28", 240, 28, 5, 1),
        ("q dw 5x5 144 56x56 s2", 144, 56, 5, 2),
    ] {
        if !name.contains(only) {
            continue;
        }
        let mut g = geom(hw, k, k / 2);
        if stride == 2 {
            // TensorFlow 'same' at stride 2: (k − 1)/2 − 1/2 rounded down before, the rest after.
            let before = (k - 2) / 2;
            (g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.oh, g.ow) = (
                2,
                2,
                before,
                before,
                k - 2 - before,
                k - 2 - before,
                hw / 2,
                hw / 2,
            );
        }
        let Some(chosen) = edgefuse_kernels::qgemm::dw_vnni::DwVnni::new(&g) else {
            continue;
        };
        for plan in [chosen.with_planar(true), chosen.with_planar(false)] {
            // `CB_SPLIT=1`: weights past i8 (u8 weights minus a zero point), split filters.
            let span = if std::env::var("CB_SPLIT").is_ok_and(|v| v == "1") {
                500
            } else {
                200
            };
            let w: Vec<i32> = (0..c * k * k)
                .map(|i| (i * 31 % span) as i32 - span as i32 / 2)
                .collect();
            let f = plan.pack(&w, c).expect("filters fit");
            let x: Vec<u8> = (0..c * hw * hw).map(|i| (i * 13 % 251) as u8).collect();
            let osz = g.oh * g.ow;
            let mut y = vec![0u8; c * osz];
            let mut scratch = vec![0u8; plan.scratch_bytes()];
            let (sums, mult, add) = (vec![5; 16], vec![0.01f32; 16], vec![1.0f32; 16]);
            let kind = OutKind::Int {
                zp: 0.0,
                lo: 0.0,
                hi: 255.0,
            };
            let us = time(200, || {
                for b in 0..c / 16 {
                    let n = hw * hw * 16;
                    plan.run_block(
                        16,
                        &x[b * n..],
                        0,
                        3,
                        f.block(b),
                        f.split(),
                        &sums,
                        &mult,
                        &add,
                        kind,
                        &mut y[b * osz * 16..],
                        &mut scratch,
                    );
                }
            });
            let how = if plan.is_planar() {
                "planar"
            } else {
                "blocked"
            };
            let chosen = if plan.is_planar() == chosen.is_planar() {
                " (chosen)"
            } else {
                ""
            };
            println!("1T {name:18} {how:7}: {us:8.1} us{chosen}");
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn bench_q_depthwise(_only: &str) {}

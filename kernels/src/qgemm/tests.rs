use super::depthwise::{self, PlaneOut};
use super::*;
use crate::conv::Window2d;

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u32) as i32
    }
}

fn window(ih: usize, iw: usize, k: usize, s: usize, p: usize, d: usize) -> Window2d {
    let o = |i: usize| (i + 2 * p - d * (k - 1) - 1) / s + 1;
    Window2d {
        ih,
        iw,
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        dh: d,
        dw: d,
        pt: p,
        pl: p,
        pb: p,
        pr: p,
        oh: o(ih),
        ow: o(iw),
    }
}

/// `acc[m][p]` computed directly from the definition.
fn reference(
    src: &Source,
    xor: u8,
    zx: i32,
    w: &[i32],
    m: usize,
    k: usize,
    cols: usize,
) -> Vec<i64> {
    let mut out = vec![0i64; m * cols];
    for p in 0..cols {
        let xs: Vec<i32> = (0..k)
            .map(|kk| match src {
                Source::Rows { x, ld } => (x[p * ld + kk] ^ xor) as i32 - zx,
                Source::Shifted { x, plane, taps, .. } => {
                    let (c, t) = (kk / taps.len(), kk % taps.len());
                    (x[c * plane + taps[t] + p] ^ xor) as i32 - zx
                }
                Source::Conv { x, g, .. } => {
                    let (c, t) = (kk / (g.kh * g.kw), kk % (g.kh * g.kw));
                    let (ki, kj) = (t / g.kw, t % g.kw);
                    let iy = ((p / g.ow) * g.sh + ki * g.dh) as isize - g.pt as isize;
                    let ix = ((p % g.ow) * g.sw + kj * g.dw) as isize - g.pl as isize;
                    if iy < 0 || ix < 0 || iy as usize >= g.ih || ix as usize >= g.iw {
                        0
                    } else {
                        (x[c * g.ih * g.iw + iy as usize * g.iw + ix as usize] ^ xor) as i32 - zx
                    }
                }
            })
            .collect();
        for r in 0..m {
            out[r * cols + p] = (0..k).map(|kk| xs[kk] as i64 * w[r * k + kk] as i64).sum();
        }
    }
    out
}

fn check_product(rng: &mut Rng, src: &Source, xor: u8, m: usize, k: usize, cols: usize, wide: u8) {
    let zx = rng.range(0, 255);
    // 0: weights that fit i8; 1: anything in −255..255 (the i16 panels); 2: u8 weights minus a
    // per-row zero point (rows span 255: the u8 × i8 panels with shifted rows).
    let zw: Vec<i32> = (0..m).map(|_| rng.range(0, 255)).collect();
    let w: Vec<i32> = (0..m * k)
        .map(|i| match wide {
            0 => rng.range(-128, 127),
            1 => rng.range(-255, 255),
            _ => rng.range(0, 255) - zw[i / k],
        })
        .collect();
    let want = reference(src, xor, zx, &w, m, k, cols);
    for kernel in QKernel::supported() {
        let qw = QWeights::new(kernel, &w, m, k, zx);
        let mut scratch = vec![0u8; qw.scratch_bytes()];
        // Exact accumulators through the f32 epilogue (mult 1, values small enough).
        let epi = Epilogue {
            mult: vec![1.0; m],
            add: vec![0.5; m],
            kind: OutKind::F32 {
                lo: f32::NEG_INFINITY,
                hi: f32::INFINITY,
            },
        };
        let mut got = vec![f32::NAN; m * cols];
        qw.run(
            src,
            xor,
            cols,
            &epi,
            &mut Out::F32(&mut got),
            cols,
            1,
            &mut scratch,
        );
        for (i, (&g, &r)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                r as f32 + 0.5,
                "{kernel:?} {:?} m={m} k={k} cols={cols} at {i}",
                qw.format()
            );
        }
        // Requantized: transposed (a GEMM's layout, element (r, p) at p·m + r) and along
        // contiguous rows (a convolution's, at r·cols + p), to u8 and to i8 (bytes in two's
        // complement).
        let scale: Vec<f32> = (0..m).map(|r| 0.001 * (r + 1) as f32).collect();
        for (by_rows, zp, lo, hi) in [
            (false, 10.0, 10.0, 255.0),
            (true, 10.0, 10.0, 255.0),
            (true, -5.0, -128.0, 127.0),
        ] {
            let epi = Epilogue {
                mult: scale.clone(),
                add: vec![3.0; m],
                kind: OutKind::Int { zp, lo, hi },
            };
            let (rs, cs) = if by_rows { (cols, 1) } else { (1, m) };
            let mut got = vec![0u8; m * cols];
            qw.run(
                src,
                xor,
                cols,
                &epi,
                &mut Out::Bytes(&mut got),
                rs,
                cs,
                &mut scratch,
            );
            for r in 0..m {
                for p in 0..cols {
                    let y = want[r * cols + p] as f32 * scale[r] + 3.0;
                    // The epilogue rounds y + zp in f32 (y = 14.500001 gives 24.5, then 24).
                    let q = (y + zp).round_ties_even().clamp(lo, hi) as i32 as u8;
                    assert_eq!(
                        got[r * rs + p * cs],
                        q,
                        "{kernel:?} requantized, rows {by_rows}, zp {zp} ({r}, {p})"
                    );
                }
            }
        }
    }
}

#[test]
fn every_kernel_matches_the_definition_on_rows() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for &(m, k, cols) in &[
        (1, 1, 1),
        (3, 5, 7),
        (8, 16, 16),
        (9, 33, 17),
        (20, 70, 40),
        (1001, 64, 1),
        // One column (the VNNI matrix-vector path): k below, at and past whole 64-byte chunks.
        (13, 130, 1),
        (40, 1280, 1),
        (7, 61, 1),
        (5, 192, 1),
        // A last panel of 1 to 4 columns deep enough to run as matrix-vector products on
        // VNNI (`narrow_pays`), rows in and past groups of four; and one of 5 columns, which
        // is not.
        (13, 200, 33),
        (9, 1152, 49),
        (22, 640, 36),
        (6, 300, 18),
        (11, 1000, 21),
    ] {
        for wide in [0, 1, 2] {
            for xor in [0u8, 0x80] {
                let x: Vec<u8> = (0..cols * (k + 3)).map(|_| rng.next() as u8).collect();
                check_product(
                    &mut rng,
                    &Source::Rows { x: &x, ld: k + 3 },
                    xor,
                    m,
                    k,
                    cols,
                    wide,
                );
            }
        }
    }
}

#[test]
fn every_kernel_matches_the_definition_on_convolutions() {
    let mut rng = Rng(42);
    for (g, c, m) in [
        (window(7, 6, 3, 1, 1, 1), 3, 5),
        (window(9, 9, 3, 2, 1, 1), 4, 9),
        (window(8, 8, 1, 1, 0, 1), 17, 12),
        (window(10, 7, 3, 1, 2, 2), 2, 8),
        (window(5, 5, 5, 2, 0, 1), 3, 3),
        // Rows of 16 and more outputs: panels inside one output row (strides 1, 2, 3, a
        // dilated window) as well as panels across rows.
        (window(40, 36, 3, 2, 1, 1), 3, 10),
        (window(50, 50, 3, 3, 1, 1), 2, 4),
        (window(34, 40, 3, 1, 2, 2), 2, 5),
        (window(20, 32, 1, 1, 0, 1), 4, 6),
        // A 1×1 convolution of a 1×1 image (a classifier head): one column, the matrix-vector
        // path on VNNI.
        (window(1, 1, 1, 1, 0, 1), 1280, 21),
        (window(1, 1, 1, 1, 0, 1), 61, 3),
    ] {
        let x: Vec<u8> = (0..c * g.ih * g.iw).map(|_| rng.next() as u8).collect();
        let src = Source::Conv {
            x: &x,
            g,
            channels: c,
        };
        // (xor 0x80: i8 activations read as u8.)
        for (wide, xor) in [(0, 0), (1, 0), (2, 0), (0, 0x80)] {
            check_product(&mut rng, &src, xor, m, c * g.kh * g.kw, g.oh * g.ow, wide);
        }
    }
}

/// The in-place stride-1 form: on the wide grid, every column with `ox < ow` equals the
/// convolution's output pixel, and the product matches the definition on every column.
#[test]
fn every_kernel_matches_the_definition_on_shifted_convolutions() {
    let mut rng = Rng(43);
    for (g, c, m) in [
        (window(7, 6, 3, 1, 0, 1), 3, 5),
        (window(13, 13, 3, 1, 0, 1), 32, 17),
        (window(5, 5, 3, 1, 0, 1), 64, 9),
        (window(10, 7, 3, 1, 0, 2), 2, 8),
        (window(28, 28, 3, 1, 0, 1), 1, 32),
    ] {
        let x: Vec<u8> = (0..c * g.ih * g.iw).map(|_| rng.next() as u8).collect();
        let taps: Vec<usize> = (0..g.kh * g.kw)
            .map(|t| (t / g.kw) * g.dh * g.iw + (t % g.kw) * g.dw)
            .collect();
        let cols = (g.oh - 1) * g.iw + g.ow;
        let src = Source::Shifted {
            x: &x,
            channels: c,
            plane: g.ih * g.iw,
            taps: &taps,
        };
        let k = c * taps.len();
        let w: Vec<i32> = (0..m * k).map(|_| rng.range(-127, 127)).collect();
        let wide = reference(&src, 0, 9, &w, m, k, cols);
        let conv = Source::Conv {
            x: &x,
            g,
            channels: c,
        };
        let dense = reference(&conv, 0, 9, &w, m, k, g.oh * g.ow);
        for r in 0..m {
            for p in 0..g.oh * g.ow {
                let (oy, ox) = (p / g.ow, p % g.ow);
                assert_eq!(wide[r * cols + oy * g.iw + ox], dense[r * g.oh * g.ow + p]);
            }
        }
        for (wide, xor) in [(0, 0), (1, 0), (2, 0), (0, 0x80)] {
            check_product(&mut rng, &src, xor, m, k, cols, wide);
        }
    }
}

#[test]
fn depthwise_matches_the_definition() {
    let mut rng = Rng(7);
    for g in [
        window(7, 9, 3, 1, 1, 1),
        window(12, 11, 3, 2, 1, 1),
        window(9, 9, 5, 2, 2, 1),
        window(8, 8, 3, 1, 2, 2),
    ] {
        let x: Vec<u8> = (0..g.ih * g.iw).map(|_| rng.next() as u8).collect();
        let w: Vec<i32> = (0..g.kh * g.kw).map(|_| rng.range(-255, 255)).collect();
        let zx = rng.range(0, 255);
        let src = Source::Conv {
            x: &x,
            g,
            channels: 1,
        };
        let want = reference(&src, 0x80, zx, &w, 1, g.kh * g.kw, g.oh * g.ow);
        for kernel in QKernel::supported() {
            let mut scratch = vec![0u8; depthwise::scratch_bytes(&g) + 3];
            let mut got = vec![f32::NAN; g.oh * g.ow];
            let kind = OutKind::F32 {
                lo: f32::NEG_INFINITY,
                hi: f32::INFINITY,
            };
            depthwise::run_channel(
                kernel,
                &g,
                &x,
                0x80,
                zx,
                &w,
                1.0,
                0.0,
                kind,
                PlaneOut::F32(&mut got),
                &mut scratch[3..],
            );
            let want_f: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            assert_eq!(got, want_f, "{kernel:?} {g:?}");
            let mut q = vec![0u8; g.oh * g.ow];
            let kind = OutKind::Int {
                zp: 128.0,
                lo: 0.0,
                hi: 255.0,
            };
            depthwise::run_channel(
                kernel,
                &g,
                &x,
                0x80,
                zx,
                &w,
                0.01,
                0.25,
                kind,
                PlaneOut::Bytes(&mut q),
                &mut scratch[3..],
            );
            for (i, &v) in want.iter().enumerate() {
                let e =
                    ((v as f32 * 0.01 + 0.25).round_ties_even() + 128.0).clamp(0.0, 255.0) as u8;
                assert_eq!(q[i], e, "{kernel:?} requantized at {i}");
            }
        }
    }
}

#[test]
fn round_even_matches_std() {
    for i in -4000..4000 {
        let v = i as f32 * 0.25;
        assert_eq!(round_even(v), v.round_ties_even(), "{v}");
    }
}

/// `run_dynamic` with a zero point other than the packing one, stored and accumulated, on every
/// family this CPU runs and for weights that fit i8 (U8/S8 formats) and that do not (I16).
#[test]
fn dynamic_runs_take_the_zero_point_and_scale_of_the_call() {
    let mut rng = Rng(0x5eed_d1a1);
    let (m, k, cols) = (21, 37, 19);
    let x: Vec<u8> = (0..cols * k).map(|_| rng.range(0, 255) as u8).collect();
    let src = Source::Rows { x: &x, ld: k };
    // 0: weights that fit i8; 1: −255..255 (i16 panels); 2: u8 minus a per-row zero point
    // (the u8 × i8 panels with shifted rows).
    for wide in 0..3 {
        let zw: Vec<i32> = (0..m).map(|_| rng.range(0, 255)).collect();
        let w: Vec<i32> = (0..m * k)
            .map(|i| match wide {
                0 => rng.range(-127, 127),
                1 => rng.range(-255, 255),
                _ => rng.range(0, 255) - zw[i / k],
            })
            .collect();
        for kernel in QKernel::supported() {
            let wts = QWeights::new(kernel, &w, m, k, 3);
            let zx = 141;
            let want = reference(&src, 0, zx, &w, m, k, cols);
            // Unclamped, and clamped to a band the values cross.
            for (lo, hi) in [(f32::NEG_INFINITY, f32::INFINITY), (-1.0, 4.0)] {
                let epi = Epilogue {
                    mult: (0..m).map(|r| 0.01 * (r + 1) as f32).collect(),
                    add: (0..m).map(|r| r as f32 * 0.25).collect(),
                    kind: OutKind::F32 { lo, hi },
                };
                let mut scratch = vec![0u8; wts.scratch_bytes()];
                // Output [cols, m] (rows of the product are columns of `out`: a MatMul's
                // layout) and [m, cols] (along rows: a convolution's, the VNNI f32 driver's).
                for (rs, cs) in [(1, m), (cols, 1)] {
                    let mut out = vec![2.0f32; cols * m];
                    for accumulate in [false, true] {
                        let dynx = Dynamic {
                            zero_point: zx,
                            scale: 0.5,
                            accumulate,
                        };
                        wts.run_dynamic(
                            &src,
                            0,
                            cols,
                            dynx,
                            &epi,
                            &mut out,
                            rs,
                            cs,
                            &mut scratch,
                            0..m,
                        );
                        for p in 0..cols {
                            for r in 0..m {
                                let y = want[r * cols + p] as f64 * 0.5 * epi.mult[r] as f64
                                    + epi.add[r] as f64;
                                let y = y.clamp(lo as f64, hi as f64);
                                let y = if accumulate { 2.0 * y } else { y };
                                let got = out[r * rs + p * cs] as f64;
                                assert!(
                                    (got - y).abs() <= 1e-4 * y.abs().max(1.0),
                                    "{kernel:?} wide {wide} ({rs}, {cs}) acc {accumulate} \
                                     ({r}, {p}): {got} vs {y}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `run_cols` over disjoint column ranges (each into its own buffer) gives the whole product's
/// bytes, for every kernel family, on a 1×1 convolution and an unfolded matrix.
#[test]
fn column_ranges_match_the_whole_product() {
    let mut rng = Rng(99);
    let (m, c, h, w) = (21, 24, 9, 13);
    let x: Vec<u8> = (0..c * h * w).map(|_| rng.next() as u8).collect();
    let g = window(h, w, 1, 1, 0, 1);
    let conv = Source::Conv {
        x: &x,
        g,
        channels: c,
    };
    let rows = Source::Rows { x: &x, ld: c };
    let cols = h * w;
    for (src, k) in [(&conv, c), (&rows, c)] {
        let wts: Vec<i32> = (0..m * k).map(|_| rng.range(-127, 127)).collect();
        let epi = Epilogue {
            mult: (0..m).map(|r| 0.002 * (r + 1) as f32).collect(),
            add: vec![1.5; m],
            kind: OutKind::Int {
                zp: 7.0,
                lo: 0.0,
                hi: 255.0,
            },
        };
        for kernel in QKernel::supported() {
            let qw = QWeights::new(kernel, &wts, m, k, 33);
            let mut scratch = vec![0u8; qw.scratch_bytes()];
            let mut whole = vec![0u8; m * cols];
            qw.run(
                src,
                0,
                cols,
                &epi,
                &mut Out::Bytes(&mut whole),
                cols,
                1,
                &mut scratch,
            );
            for cuts in [[0, 1, 2, cols], [0, 17, 50, cols], [0, 40, cols - 1, cols]] {
                for r in cuts.windows(2) {
                    let (c0, c1) = (r[0], r[1]);
                    let mut part = vec![0u8; m * (c1 - c0)];
                    qw.run_cols(
                        src,
                        0,
                        c0..c1,
                        &epi,
                        &mut Out::Bytes(&mut part),
                        c1 - c0,
                        1,
                        &mut scratch,
                    );
                    for row in 0..m {
                        assert_eq!(
                            &part[row * (c1 - c0)..(row + 1) * (c1 - c0)],
                            &whole[row * cols + c0..row * cols + c1],
                            "{kernel:?} columns {c0}..{c1}, row {row}"
                        );
                    }
                }
            }
        }
    }
}

/// `run_cols_shared`: threads writing disjoint column ranges straight into one output give the
/// whole product's bytes (weights that fit i8 and shifted u8 weights; a 1×1 convolution wide
/// enough for several blocks of panels), nothing past the output is touched, and each range
/// alone writes its own columns and no others.
#[test]
fn shared_column_ranges_match_the_whole_product() {
    let mut rng = Rng(7);
    let (m, h, w) = (19, 23, 29);
    let cols = h * w;
    let mut ran = false;
    // 160 channels: ranges ending a column past a whole panel (0..17, 16..17 and 650..667)
    // leave a last panel of one column deep enough for the matrix-vector products.
    for (c, wide) in [(16, false), (16, true), (160, false), (160, true)] {
        let x: Vec<u8> = (0..c * h * w).map(|_| rng.next() as u8).collect();
        let src = Source::Conv {
            x: &x,
            g: window(h, w, 1, 1, 0, 1),
            channels: c,
        };
        let zw: Vec<i32> = (0..m).map(|_| rng.range(0, 255)).collect();
        let wts: Vec<i32> = (0..m * c)
            .map(|i| match wide {
                false => rng.range(-127, 127),
                true => rng.range(0, 255) - zw[i / c],
            })
            .collect();
        let epi = Epilogue {
            mult: (0..m).map(|r| 0.0007 * (r + 1) as f32).collect(),
            add: vec![-2.5; m],
            kind: OutKind::Int {
                zp: 9.0,
                lo: 0.0,
                hi: 255.0,
            },
        };
        for kernel in QKernel::supported() {
            let qw = QWeights::new(kernel, &wts, m, c, 41);
            if !qw.writes_shared() {
                continue;
            }
            ran = true;
            let mut whole = vec![0u8; m * cols];
            let mut scratch = vec![0u8; qw.scratch_bytes()];
            qw.run(
                &src,
                0,
                cols,
                &epi,
                &mut Out::Bytes(&mut whole),
                cols,
                1,
                &mut scratch,
            );
            for cuts in [
                vec![0, 1, cols],
                vec![0, 272, 400, cols],
                vec![0, 16, 17, cols],
                vec![0, 17, 650, cols],
            ] {
                // Guard bytes after the output: they stay as they were.
                let mut out = vec![0xA5u8; m * cols + 64];
                let shared = SharedBytes::new(&mut out[..m * cols]);
                std::thread::scope(|s| {
                    for r in cuts.windows(2) {
                        let (c0, c1, shared, src) = (r[0], r[1], &shared, &src);
                        let (qw, epi) = (&qw, &epi);
                        s.spawn(move || {
                            let mut scratch = vec![0u8; qw.scratch_bytes()];
                            // SAFETY: the threads take disjoint column ranges.
                            unsafe {
                                qw.run_cols_shared(src, 0, c0..c1, epi, shared, cols, &mut scratch)
                            }
                        });
                    }
                });
                assert_eq!(
                    &out[..m * cols],
                    &whole[..],
                    "{kernel:?} wide {wide} cuts {cuts:?}"
                );
                assert!(out[m * cols..].iter().all(|&b| b == 0xA5));
                // Each range alone touches its own columns only.
                for r in cuts.windows(2) {
                    let (c0, c1) = (r[0], r[1]);
                    let mut out = vec![0xA5u8; m * cols];
                    let shared = SharedBytes::new(&mut out);
                    // SAFETY: one thread.
                    unsafe {
                        qw.run_cols_shared(&src, 0, c0..c1, &epi, &shared, cols, &mut scratch)
                    };
                    for (i, (&got, &want)) in out.iter().zip(&whole).enumerate() {
                        let mine = (c0..c1).contains(&(i % cols));
                        assert_eq!(
                            got,
                            if mine { want } else { 0xA5 },
                            "{kernel:?} columns {c0}..{c1} at {i}"
                        );
                    }
                }
            }
        }
    }
    if !ran {
        eprintln!("qgemm: shared-output test skipped, this CPU has no AVX-512 VNNI");
    }
}

/// `run_cols_shared_f32` over disjoint column ranges, from threads of their own, gives the
/// whole product's floats (run-time zero point and scale, clamped), touching no other column;
/// on i8 and shifted u8 weights.
#[test]
fn shared_f32_column_ranges_match_the_whole_product() {
    let mut rng = Rng(17);
    let (m, h, w) = (21, 13, 31);
    let cols = h * w;
    let mut ran = false;
    for (c, wide) in [(24, false), (24, true), (150, true)] {
        let x: Vec<u8> = (0..c * h * w).map(|_| rng.next() as u8).collect();
        let src = Source::Conv {
            x: &x,
            g: window(h, w, 1, 1, 0, 1),
            channels: c,
        };
        let zw: Vec<i32> = (0..m).map(|_| rng.range(0, 255)).collect();
        let wts: Vec<i32> = (0..m * c)
            .map(|i| match wide {
                false => rng.range(-127, 127),
                true => rng.range(0, 255) - zw[i / c],
            })
            .collect();
        let epi = Epilogue {
            mult: (0..m).map(|r| 0.003 * (r + 1) as f32).collect(),
            add: vec![-1.5; m],
            kind: OutKind::F32 { lo: -4.0, hi: 9.0 },
        };
        let x_run = Dynamic {
            zero_point: 133,
            scale: 0.25,
            accumulate: false,
        };
        for kernel in QKernel::supported() {
            let qw = QWeights::new(kernel, &wts, m, c, 0);
            if !qw.writes_shared() {
                continue;
            }
            ran = true;
            let mut whole = vec![0f32; m * cols];
            let mut scratch = vec![0u8; qw.scratch_bytes()];
            qw.run_dynamic(
                &src,
                0,
                cols,
                x_run,
                &epi,
                &mut whole,
                cols,
                1,
                &mut scratch,
                0..m,
            );
            for cuts in [
                vec![0, 1, cols],
                vec![0, 160, 250, cols],
                vec![0, 16, 17, cols],
            ] {
                // Guard values after the output: they stay as they were.
                let mut out = vec![f32::MAX; m * cols + 16];
                let shared = SharedF32::new(&mut out[..m * cols]);
                std::thread::scope(|s| {
                    for r in cuts.windows(2) {
                        let (c0, c1, shared, src) = (r[0], r[1], &shared, &src);
                        let (qw, epi) = (&qw, &epi);
                        s.spawn(move || {
                            let mut scratch = vec![0u8; qw.scratch_bytes()];
                            // SAFETY: the threads take disjoint column ranges.
                            unsafe {
                                qw.run_cols_shared_f32(
                                    src,
                                    0,
                                    c0..c1,
                                    Some(x_run),
                                    epi,
                                    shared,
                                    cols,
                                    &mut scratch,
                                )
                            }
                        });
                    }
                });
                assert_eq!(
                    &out[..m * cols],
                    &whole[..],
                    "{kernel:?} wide {wide} {cuts:?}"
                );
                assert!(out[m * cols..].iter().all(|&v| v == f32::MAX));
                for r in cuts.windows(2) {
                    let (c0, c1) = (r[0], r[1]);
                    let mut out = vec![f32::MAX; m * cols];
                    let shared = SharedF32::new(&mut out);
                    // SAFETY: one thread.
                    unsafe {
                        qw.run_cols_shared_f32(
                            &src,
                            0,
                            c0..c1,
                            Some(x_run),
                            &epi,
                            &shared,
                            cols,
                            &mut scratch,
                        )
                    };
                    for (i, (&got, &want)) in out.iter().zip(&whole).enumerate() {
                        let mine = (c0..c1).contains(&(i % cols));
                        assert_eq!(
                            got,
                            if mine { want } else { f32::MAX },
                            "{kernel:?} columns {c0}..{c1} at {i}"
                        );
                    }
                }
            }
        }
    }
    if !ran {
        eprintln!("qgemm: shared f32 output test skipped, this CPU has no AVX-512 VNNI");
    }
}

/// Byte outputs whose lower bound is the type's floor (0 for u8, -128 for i8: layers without a
/// ReLU clamp) are narrowed by saturation where the VNNI path drops the `max`: values far past
/// both bounds, past i32's range, infinite and NaN still give what `quantize_byte` gives.
#[test]
fn byte_floors_match_the_definition_far_out_of_range() {
    let mut rng = Rng(11);
    let (m, k, cols) = (13, 40, 37);
    let x: Vec<u8> = (0..cols * k).map(|_| rng.next() as u8).collect();
    let src = Source::Rows { x: &x, ld: k };
    let w: Vec<i32> = (0..m * k).map(|_| rng.range(-128, 127)).collect();
    let zx = 77;
    let want = reference(&src, 0, zx, &w, m, k, cols);
    // Per row: ordinary, huge both ways (past i32 once scaled), infinite, NaN, tiny.
    let mult: Vec<f32> = [
        0.01,
        1e12,
        -1e12,
        3.0,
        -3.0,
        f32::INFINITY,
        f32::NAN,
        0.002,
        1e-9,
        0.05,
        -0.05,
        1e30,
        0.5,
    ]
    .to_vec();
    let add: Vec<f32> = (0..m).map(|r| r as f32 * 7.5 - 40.0).collect();
    for kernel in QKernel::supported() {
        let qw = QWeights::new(kernel, &w, m, k, zx);
        let mut scratch = vec![0u8; qw.scratch_bytes()];
        for (zp, lo, hi) in [(0.0, 0.0, 255.0), (3.0, 0.0, 255.0), (-5.0, -128.0, 127.0)] {
            let epi = Epilogue {
                mult: mult.clone(),
                add: add.clone(),
                kind: OutKind::Int { zp, lo, hi },
            };
            let mut got = vec![0u8; m * cols];
            qw.run(
                &src,
                0,
                cols,
                &epi,
                &mut Out::Bytes(&mut got),
                cols,
                1,
                &mut scratch,
            );
            for r in 0..m {
                for p in 0..cols {
                    let y = want[r * cols + p] as f32 * mult[r] + add[r];
                    let q = quantize_byte(y + zp, lo, hi);
                    assert_eq!(
                        got[r * cols + p],
                        q,
                        "{kernel:?} zp {zp} lo {lo} row {r} (mult {}) column {p}",
                        mult[r]
                    );
                }
            }
        }
    }
}

/// A long row of u8 weights (0..=255, shifted into i8 where the family reads u8 × i8): the
/// accumulator and the shift's correction `s·Σx` each pass i32 though the product fits it.
/// Every family, one column and a panel's worth, bit for bit with the definition's epilogue.
#[test]
fn long_rows_of_u8_weights_wrap_to_the_exact_product() {
    let mut rng = Rng(0x10e6_c0de);
    let (m, k, zx) = (3, 200_000, 128);
    // Activations close to their zero point, so the true sums stay well inside i32.
    let cols = 6;
    let x: Vec<u8> = (0..cols * k).map(|_| rng.range(120, 136) as u8).collect();
    let src = Source::Rows { x: &x, ld: k };
    let w: Vec<i32> = (0..m * k)
        .map(|i| match i / k {
            0 => 255,
            1 => rng.range(0, 255),
            _ => rng.range(200, 255),
        })
        .collect();
    let want = reference(&src, 0, zx, &w, m, k, cols);
    let epi = Epilogue {
        mult: vec![0.01, 0.02, 0.03],
        add: vec![0.5, -1.0, 2.0],
        kind: OutKind::F32 {
            lo: f32::NEG_INFINITY,
            hi: f32::INFINITY,
        },
    };
    let dynx = Dynamic {
        zero_point: zx,
        scale: 0.5,
        accumulate: false,
    };
    for kernel in QKernel::supported() {
        let wts = QWeights::new(kernel, &w, m, k, 0);
        let mut scratch = vec![0u8; wts.scratch_bytes()];
        for n in [1, cols] {
            let mut out = vec![0f32; n * m];
            wts.run_dynamic(&src, 0, n, dynx, &epi, &mut out, 1, m, &mut scratch, 0..m);
            for p in 0..n {
                for r in 0..m {
                    let acc = i32::try_from(want[r * cols + p]).expect("fits i32");
                    let y = acc as f32 * (epi.mult[r] * 0.5) + epi.add[r];
                    let got = out[p * m + r];
                    assert_eq!(
                        got.to_bits(),
                        y.to_bits(),
                        "{kernel:?} ({r}, {p}): {got} vs {y}"
                    );
                }
            }
        }
    }
}

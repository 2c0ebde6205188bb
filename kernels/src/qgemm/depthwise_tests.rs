use super::*;
use crate::gemm::Kernel;

/// A window with per-side pads `[top, left, bottom, right]`; output sizes follow ONNX.
fn win(ih: usize, iw: usize, k: usize, s: usize, d: usize, pads: [usize; 4]) -> Window2d {
    let o = |i: usize, a: usize, b: usize| (i + a + b - d * (k - 1) - 1) / s + 1;
    Window2d {
        ih,
        iw,
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        dh: d,
        dw: d,
        pt: pads[0],
        pl: pads[1],
        pb: pads[2],
        pr: pads[3],
        oh: o(ih, pads[0], pads[2]),
        ow: o(iw, pads[1], pads[3]),
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u32) as i32
    }
}

fn geometries() -> Vec<Window2d> {
    vec![
        win(14, 14, 5, 1, 1, [2, 2, 2, 2]),
        win(9, 11, 3, 1, 1, [1, 1, 1, 1]),
        // TF 'same' with stride 2: 0 before, 1 after (3×3), 1 and 2 (5×5).
        win(14, 14, 3, 2, 1, [0, 0, 1, 1]),
        win(15, 13, 5, 2, 1, [1, 1, 2, 2]),
        win(12, 12, 5, 2, 1, [2, 2, 1, 1]),
        win(8, 9, 3, 2, 2, [2, 1, 0, 3]),
        // 1-D and tiny planes.
        win(1, 20, 1, 1, 1, [0, 0, 0, 0]),
        win(1, 1, 3, 1, 1, [1, 1, 1, 1]),
        win(2, 2, 3, 2, 1, [0, 0, 1, 1]),
        win(3, 4, 3, 1, 1, [0, 0, 0, 0]),
        win(7, 7, 5, 1, 1, [2, 2, 2, 2]),
        win(2, 3, 3, 1, 1, [4, 4, 4, 4]),
        // Near the exactness limit: 15 × 15 = 225 taps of extreme values.
        win(17, 16, 15, 1, 1, [7, 7, 7, 7]),
    ]
}

/// The blocked path against `run_channel`, bit for bit, for every output kind and family.
#[test]
fn blocked_matches_per_channel() {
    let mut rng = Rng(11);
    let kinds = [
        // u8 output, zero point 3, no activation.
        (
            OutKind::Int {
                zp: 3.0,
                lo: 0.0,
                hi: 255.0,
            },
            false,
        ),
        // ReLU6 with zero point 0, scale 6/255.
        (
            OutKind::Int {
                zp: 0.0,
                lo: 0.0,
                hi: 255.0,
            },
            false,
        ),
        // i8 output, zero point −5, ReLU6-style clamp.
        (
            OutKind::Int {
                zp: -5.0,
                lo: -5.0,
                hi: 60.0,
            },
            false,
        ),
        (
            OutKind::F32 {
                lo: f32::NEG_INFINITY,
                hi: f32::INFINITY,
            },
            true,
        ),
        (OutKind::F32 { lo: 0.0, hi: 6.0 }, true),
    ];
    for (gi, g) in geometries().iter().enumerate() {
        let extreme = g.taps() > 100;
        for c in [1, 3, 4, 5, 9, 16, 19, 37] {
            if extreme && c > 5 {
                continue;
            }
            let (xor, zx) = match gi % 3 {
                0 => (0, rng.range(0, 255)),
                1 => (0x80, 128 + rng.range(-128, 127)),
                _ => (0, 0),
            };
            let x: Vec<u8> = (0..c * g.in_size())
                .map(|_| if extreme { 255 } else { rng.next() as u8 })
                .collect();
            let wq: Vec<i32> = (0..c * g.taps())
                .map(|_| if extreme { -255 } else { rng.range(-255, 255) })
                .collect();
            let zx = if extreme { 0 } else { zx };
            let w = taps_f32(&wq);
            let mult: Vec<f32> = (0..c).map(|_| rng.range(1, 4000) as f32 * 1e-6).collect();
            let add: Vec<f32> = (0..c)
                .map(|_| rng.range(-2000, 2000) as f32 * 0.01)
                .collect();
            for &(kind, f32_out) in &kinds {
                let (isz, osz, t) = (g.in_size(), g.out_size(), g.taps());
                // The reference, one channel at a time.
                let mut sc = vec![0u8; scratch_bytes(g) + 64];
                let mut want_b = vec![0u8; c * osz];
                let mut want_f = vec![0f32; c * osz];
                for ch in 0..c {
                    let out = if f32_out {
                        PlaneOut::F32(&mut want_f[ch * osz..(ch + 1) * osz])
                    } else {
                        PlaneOut::Bytes(&mut want_b[ch * osz..(ch + 1) * osz])
                    };
                    let (xc, wc) = (&x[ch * isz..(ch + 1) * isz], &wq[ch * t..(ch + 1) * t]);
                    let (m, a) = (mult[ch], add[ch]);
                    run_channel(
                        QKernel::Portable,
                        g,
                        xc,
                        xor,
                        zx,
                        wc,
                        m,
                        a,
                        kind,
                        out,
                        &mut sc,
                    );
                }
                for &kernel in Kernel::supported() {
                    let plan = DepthwisePlan::with_kernel(g, kernel);
                    for plan in [plan, plan.with_band(1), plan.with_band(2)] {
                        let l = plan.lanes();
                        let mut scratch = vec![f32::NAN; plan.scratch_len()];
                        let mut got_b = vec![0xEEu8; c * osz + 7];
                        let mut got_f = vec![f32::NAN; c * osz + 7];
                        for c0 in (0..c).step_by(l) {
                            let n = l.min(c - c0);
                            let out = if f32_out {
                                PlaneOut::F32(&mut got_f[c0 * osz..])
                            } else {
                                PlaneOut::Bytes(&mut got_b[c0 * osz..])
                            };
                            let (xb, wb) = (&x[c0 * isz..], &w[c0 * t..]);
                            let (mb, ab) = (&mult[c0..], &add[c0..]);
                            run_block(&plan, n, xb, xor, zx, wb, mb, ab, kind, out, &mut scratch);
                        }
                        let what = format!("{kernel:?} {plan:?} c={c} {kind:?} xor={xor} zx={zx}");
                        if f32_out {
                            let same = got_f[..c * osz]
                                .iter()
                                .zip(&want_f)
                                .all(|(a, b)| a.to_bits() == b.to_bits());
                            assert!(same, "{what}: f32 outputs differ");
                            assert!(
                                got_f[c * osz..].iter().all(|v| v.is_nan()),
                                "{what}: past end"
                            );
                        } else {
                            assert_eq!(&got_b[..c * osz], &want_b[..], "{what}");
                            assert!(
                                got_b[c * osz..].iter().all(|&v| v == 0xEE),
                                "{what}: past end"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The extreme window's sums are the exact integers (so neither path rounds).
#[test]
fn extreme_window_is_exact() {
    let g = win(15, 15, 15, 1, 1, [7, 7, 7, 7]);
    let x = vec![255u8; g.in_size()];
    let wq = vec![-255i32; g.taps()];
    let plan = DepthwisePlan::new(&g);
    let mut scratch = vec![0.0; plan.scratch_len()];
    let mut y = vec![0f32; g.out_size()];
    let kind = OutKind::F32 {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };
    let (w, one, zero) = (taps_f32(&wq), [1.0], [0.0]);
    let out = PlaneOut::F32(&mut y);
    run_block(&plan, 1, &x, 0, 0, &w, &one, &zero, kind, out, &mut scratch);
    // The centre pixel sees all 225 taps.
    assert_eq!(y[7 * 15 + 7], -(225 * 255 * 255) as f32);
}

/// Times the blocked int8 path against `run_channel` and the fp32 blocked kernel on
/// EfficientNet-Lite0's depthwise layers (one thread):
/// `cargo test --release -p edgefuse-kernels qdepthwise_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn qdepthwise_speed() {
    use std::time::Instant;
    let same = |i: usize, k: usize, s: usize| {
        let o = i.div_ceil(s);
        let pad = ((o - 1) * s + k).saturating_sub(i);
        win(
            i,
            i,
            k,
            s,
            1,
            [pad / 2, pad / 2, pad - pad / 2, pad - pad / 2],
        )
    };
    let layers = [
        (32, same(112, 3, 1)),
        (96, same(112, 3, 2)),
        (144, same(56, 3, 1)),
        (144, same(56, 5, 2)),
        (240, same(28, 5, 1)),
        (240, same(28, 3, 2)),
        (480, same(14, 3, 1)),
        (480, same(14, 5, 1)),
        (672, same(14, 5, 1)),
        (672, same(14, 5, 2)),
        (1152, same(7, 5, 1)),
        (1152, same(7, 3, 1)),
    ];
    let best = |f: &mut dyn FnMut()| {
        f();
        (0..30)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    };
    let mut rng = Rng(5);
    let kind = OutKind::Int {
        zp: 0.0,
        lo: 0.0,
        hi: 255.0,
    };
    let (mut t_old, mut t_new, mut t_f32) = (0.0, 0.0, 0.0);
    for (c, g) in layers {
        let (isz, osz, t) = (g.in_size(), g.out_size(), g.taps());
        let x: Vec<u8> = (0..c * isz).map(|_| rng.next() as u8).collect();
        let wq: Vec<i32> = (0..c * t).map(|_| rng.range(-127, 127)).collect();
        let w = taps_f32(&wq);
        let (mult, add) = (vec![0.001f32; c], vec![3.0f32; c]);
        let mut y = vec![0u8; c * osz];
        let mut sc = vec![0u8; scratch_bytes(&g) + 64];
        let old = best(&mut || {
            for ch in 0..c {
                let out = PlaneOut::Bytes(&mut y[ch * osz..(ch + 1) * osz]);
                let (xc, wc) = (&x[ch * isz..(ch + 1) * isz], &wq[ch * t..(ch + 1) * t]);
                let k = QKernel::detect();
                run_channel(k, &g, xc, 0, 3, wc, 0.001, 3.0, kind, out, &mut sc);
            }
        });
        let plan = DepthwisePlan::new(&g);
        let l = plan.lanes();
        let mut scratch = vec![0f32; plan.scratch_len()];
        let new = best(&mut || {
            for c0 in (0..c).step_by(l) {
                let n = l.min(c - c0);
                let out = PlaneOut::Bytes(&mut y[c0 * osz..]);
                let (xb, wb) = (&x[c0 * isz..], &w[c0 * t..]);
                let (mb, ab) = (&mult[c0..], &add[c0..]);
                run_block(&plan, n, xb, 0, 3, wb, mb, ab, kind, out, &mut scratch);
            }
        });
        let kf = OutKind::F32 { lo: 0.0, hi: 6.0 };
        let mut yq = vec![0f32; c * osz];
        let newf = best(&mut || {
            for c0 in (0..c).step_by(l) {
                let n = l.min(c - c0);
                let out = PlaneOut::F32(&mut yq[c0 * osz..]);
                let (xb, wb) = (&x[c0 * isz..], &w[c0 * t..]);
                let (mb, ab) = (&mult[c0..], &add[c0..]);
                run_block(&plan, n, xb, 0, 3, wb, mb, ab, kf, out, &mut scratch);
            }
        });
        println!("f32 out {newf:7.3}");
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut yf = vec![0f32; c * osz];
        let fp = best(&mut || {
            for c0 in (0..c).step_by(l) {
                let n = l.min(c - c0);
                let (xb, wb) = (&xf[c0 * isz..], &w[c0 * t..]);
                plan.run_block(
                    n,
                    xb,
                    wb,
                    Some(&add[c0..]),
                    &mut yf[c0 * osz..],
                    &mut scratch,
                );
            }
        });
        println!(
            "{c:5} ch {:3}x{:<3} k{} s{}: run_channel {old:7.3} ms, blocked {new:7.3} ms \
             ({:.1}x), fp32 blocked {fp:7.3} ms",
            g.ih,
            g.iw,
            g.kh,
            g.sh,
            old / new
        );
        (t_old, t_new, t_f32) = (t_old + old, t_new + new, t_f32 + fp);
    }
    println!("total: run_channel {t_old:.3} ms, blocked {t_new:.3} ms, fp32 blocked {t_f32:.3} ms");
}

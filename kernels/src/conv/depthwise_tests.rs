use std::time::Instant;

use super::*;
use crate::conv::depthwise as per_plane;

/// A window with per-side pads `[top, left, bottom, right]`; output sizes follow ONNX.
#[allow(clippy::too_many_arguments)]
fn win(
    ih: usize,
    iw: usize,
    kh: usize,
    kw: usize,
    s: usize,
    d: usize,
    pads: [usize; 4],
) -> Window2d {
    let o = |i: usize, k: usize, a: usize, b: usize| (i + a + b - d * (k - 1) - 1) / s + 1;
    Window2d {
        ih,
        iw,
        kh,
        kw,
        sh: s,
        sw: s,
        dh: d,
        dw: d,
        pt: pads[0],
        pl: pads[1],
        pb: pads[2],
        pr: pads[3],
        oh: o(ih, kh, pads[0], pads[2]),
        ow: o(iw, kw, pads[1], pads[3]),
    }
}

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i + seed) * 7919) % 23) as f32 * 0.125 - 1.375)
        .collect()
}

/// Σ taps directly, zero outside the input.
fn reference(g: &Window2d, c: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; c * g.out_size()];
    for ch in 0..c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = b[ch];
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                        let ix = (ox * g.sw + kj * g.dw) as isize - g.pl as isize;
                        if iy >= 0 && ix >= 0 && iy < g.ih as isize && ix < g.iw as isize {
                            let xv = x[ch * g.in_size() + iy as usize * g.iw + ix as usize];
                            acc += w[ch * g.taps() + ki * g.kw + kj] * xv;
                        }
                    }
                }
                y[ch * g.out_size() + oy * g.ow + ox] = acc;
            }
        }
    }
    y
}

/// Runs every block of `c` channels through `plan`, the way the runtime does.
#[allow(clippy::too_many_arguments)]
fn run_all(
    plan: &DepthwisePlan,
    g: &Window2d,
    c: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let l = plan.lanes();
    for c0 in (0..c).step_by(l) {
        let n = l.min(c - c0);
        plan.run_block(
            n,
            &x[c0 * g.in_size()..],
            &w[c0 * g.taps()..],
            Some(&b[c0..]),
            &mut y[c0 * g.out_size()..],
            scratch,
        );
    }
}

fn geometries() -> Vec<Window2d> {
    vec![
        win(5, 6, 3, 3, 1, 1, [1, 1, 1, 1]),
        win(9, 7, 5, 5, 2, 1, [2, 2, 2, 2]),
        win(8, 8, 3, 3, 1, 3, [3, 3, 3, 3]),
        win(8, 9, 3, 3, 2, 2, [2, 1, 0, 3]),
        // TF 'same' with stride 2: pads 1 before, 2 after (and 0/1).
        win(12, 12, 5, 5, 2, 1, [1, 1, 2, 2]),
        win(10, 11, 3, 3, 2, 1, [0, 0, 1, 1]),
        // 1-D: height 1.
        win(1, 20, 1, 5, 1, 1, [0, 2, 0, 2]),
        win(1, 31, 1, 3, 2, 2, [0, 0, 0, 4]),
        // Tiny planes.
        win(1, 1, 3, 3, 1, 1, [1, 1, 1, 1]),
        win(7, 7, 5, 5, 1, 1, [2, 2, 2, 2]),
        win(7, 7, 3, 3, 2, 1, [1, 1, 1, 1]),
        win(3, 4, 3, 3, 1, 1, [0, 0, 0, 0]),
        // Pads larger than the input.
        win(2, 3, 3, 3, 1, 1, [4, 4, 4, 4]),
        // The register-blocked AVX-512 rows: runs of 7 tiling the row (14, 21 wide), runs
        // of 8 with a last run sliding back (10, 9, 12 wide), widths 3, 5 and 7, strides
        // 1 and 2.
        win(14, 14, 5, 5, 1, 1, [2, 2, 2, 2]),
        win(6, 21, 3, 3, 1, 1, [1, 1, 1, 1]),
        win(19, 19, 3, 3, 2, 1, [1, 1, 1, 1]),
        win(12, 17, 5, 5, 2, 1, [2, 2, 2, 2]),
        win(16, 16, 7, 7, 1, 1, [3, 3, 3, 3]),
        win(9, 23, 7, 7, 2, 1, [3, 3, 3, 3]),
    ]
}

#[test]
fn every_family_matches_the_direct_sum() {
    for &kernel in Kernel::supported() {
        for (i, g) in geometries().iter().enumerate() {
            for c in [1, 3, 4, 5, 8, 13, 16, 17, 37] {
                let x = data(c * g.in_size(), i);
                let w = data(c * g.taps(), 100 + i);
                let b = data(c, 7);
                let want = reference(g, c, &x, &w, &b);
                let plan = DepthwisePlan::with_kernel(g, kernel);
                for plan in [
                    plan,
                    plan.with_band(1),
                    plan.with_band(2),
                    plan.with_band(3),
                ] {
                    let mut y = vec![f32::NAN; c * g.out_size() + 5];
                    let mut scratch = vec![f32::NAN; plan.scratch_len()];
                    run_all(&plan, g, c, &x, &w, &b, &mut y, &mut scratch);
                    for (k, (got, want)) in y.iter().zip(&want).enumerate() {
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{kernel:?} {plan:?} c={c}: y[{k}] = {got}, want {want}"
                        );
                    }
                    assert!(
                        y[want.len()..].iter().all(|v| v.is_nan()),
                        "wrote past the planes"
                    );
                }
            }
        }
    }
}

/// Equal element by element, a NaN equal to a NaN and +0 to −0.
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// The planar path (AVX-512: 3×3 and 5×5 windows at stride 1 with "same" padding, or at stride
/// 2; wide planes) against the blocked path and the direct sum: rows of whole vectors, a half
/// vector, more vectors than one group holds, planes shorter than the window, odd heights, at
/// stride 2 symmetric, TensorFlow-"same", no, and the largest leading pads. The data are not
/// dyadic (sums round), so equality with the blocked path checks the summation order too; one
/// NaN input goes through the clamp; the floats after the outputs must stay untouched.
#[test]
fn planar_matches_blocked_and_the_direct_sum() {
    if !Kernel::supported().contains(&Kernel::Avx512) {
        eprintln!("skipped: the planar depthwise path needs AVX-512");
        return;
    }
    let cases = [
        (3, 1, 5, 112, [1; 4]),
        (3, 1, 3, 56, [1; 4]),
        (5, 1, 4, 60, [2; 4]),
        (3, 1, 2, 130, [1; 4]),
        (5, 1, 1, 56, [2; 4]),
        (5, 1, 7, 256, [2; 4]),
        (3, 1, 9, 77, [1; 4]),
        (3, 2, 9, 112, [1; 4]),
        (3, 2, 8, 112, [0, 0, 1, 1]),
        (5, 2, 7, 112, [2; 4]),
        (5, 2, 6, 113, [1, 1, 2, 2]),
        (3, 2, 5, 121, [0; 4]),
        (3, 2, 3, 256, [1; 4]),
        (5, 2, 2, 130, [2, 2, 1, 1]),
        (5, 2, 5, 112, [4, 3, 0, 0]),
        (3, 2, 4, 112, [2, 2, 0, 0]),
    ];
    let wavy = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7 + seed) as f32 * 0.37).sin() * 1.3)
            .collect()
    };
    const GUARD: usize = 16;
    for (k, st, h, wd, pads) in cases {
        let g = win(h, wd, k, k, st, 1, pads);
        let plan = DepthwisePlan::new(&g);
        let tag = format!("{k}x{k} s{st} on {h}x{wd} {pads:?}");
        assert!(plan.is_planar(), "{tag}");
        let c = 19;
        let (mut x, w, b) = (wavy(c * g.in_size(), 1), wavy(c * g.taps(), 2), wavy(c, 3));
        // One NaN input in channel 3 (its plane's middle).
        x[3 * g.in_size() + g.in_size() / 2] = f32::NAN;
        let n = c * g.out_size();
        let mut scratch = vec![0.0; plan.scratch_len()];
        let mut got = vec![f32::NAN; n + GUARD];
        got[n..].fill(-7.0);
        run_all(&plan, &g, c, &x, &w, &b, &mut got, &mut scratch);
        assert!(
            got[n..].iter().all(|&v| v == -7.0),
            "wrote past the planes, {tag}"
        );
        let mut want = vec![f32::NAN; n];
        run_all(&plan.blocked(), &g, c, &x, &w, &b, &mut want, &mut scratch);
        assert!(same(&got[..n], &want), "planar against blocked, {tag}");
        // Clamped as stored, against the blocked path's outputs clamped after (a NaN gives lo).
        let (lo, hi) = (-0.5f32, 0.75f32);
        let l = plan.lanes();
        for c0 in (0..c).step_by(l) {
            let m = l.min(c - c0);
            let (xs, ws) = (&x[c0 * g.in_size()..], &w[c0 * g.taps()..]);
            let ys = &mut got[c0 * g.out_size()..];
            let bs = Some(&b[c0..]);
            assert!(plan.run_block_clamped(m, xs, ws, bs, ys, &mut scratch, Some((lo, hi))));
        }
        assert!(
            got[n..].iter().all(|&v| v == -7.0),
            "wrote past the planes, {tag}"
        );
        let clamped: Vec<f32> = want.iter().map(|v| v.max(lo).min(hi)).collect();
        assert!(got[..n] == clamped[..], "clamped, {tag}");
        let r = reference(&g, c, &x, &w, &b);
        for (i, (a, e)) in want.iter().zip(&r).enumerate() {
            let ok = (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-5 * e.abs().max(1.0);
            assert!(ok, "{tag} [{i}]: {a} vs {e}");
        }
    }
    // Stride 3, dilated, narrow or unevenly padded stride-1 windows stay on the blocked path.
    for g in [
        win(8, 112, 3, 3, 3, 1, [1, 1, 1, 1]),
        win(8, 112, 3, 3, 1, 2, [2, 2, 2, 2]),
        win(8, 28, 3, 3, 1, 1, [1, 1, 1, 1]),
        win(8, 56, 5, 5, 2, 1, [2, 2, 2, 2]),
        win(8, 112, 3, 3, 1, 1, [0, 0, 0, 0]),
        win(8, 112, 7, 7, 1, 1, [3, 3, 3, 3]),
    ] {
        assert!(!DepthwisePlan::new(&g).is_planar(), "{g:?}");
    }
}

/// Times the blocked kernel against the per-plane one on EfficientNet-Lite0's layer shapes:
/// `cargo test --release -p edgefuse-kernels depthwise_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn depthwise_speed() {
    let same = |i: usize, k: usize, s: usize| {
        let o = i.div_ceil(s);
        let pad = ((o - 1) * s + k).saturating_sub(i);
        win(
            i,
            i,
            k,
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
        (672, same(14, 5, 2)),
        (1152, same(7, 5, 1)),
        (1152, same(7, 3, 1)),
    ];
    for (c, g) in layers {
        let x = data(c * g.in_size(), 1);
        let w = data(c * g.taps(), 2);
        let b = data(c, 3);
        let y = vec![0.0; c * g.out_size()];
        let time = |f: &mut dyn FnMut(&mut [f32])| {
            let mut y = y.clone();
            f(&mut y);
            // The fastest of many runs: the machine may be shared.
            (0..30)
                .map(|_| {
                    let t = Instant::now();
                    f(&mut y);
                    t.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min)
        };
        let old = time(&mut |y| {
            for ch in 0..c {
                per_plane(
                    &g,
                    &x[ch * g.in_size()..],
                    &w[ch * g.taps()..],
                    b[ch],
                    &mut y[ch * g.out_size()..],
                );
            }
        });
        let mut line = format!(
            "{c:5}ch {}x{} k{} s{}: per-plane {old:.3} ms",
            g.ih, g.iw, g.kh, g.sh
        );
        for &kernel in Kernel::supported() {
            let plan = DepthwisePlan::with_kernel(&g, kernel);
            let mut scratch = vec![0.0; plan.scratch_len()];
            let t = time(&mut |y| run_all(&plan, &g, c, &x, &w, &b, y, &mut scratch));
            line += &format!(", {kernel:?} {t:.3} ms ({:.1}x)", old / t);
        }
        println!("{line}");
    }
}

//! Winograd F(2×2, 3×3) and F(4×4, 3×3) against direct convolution.

use super::*;

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn window(ih: usize, iw: usize, pad: usize) -> Window2d {
    Window2d {
        ih,
        iw,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pt: pad,
        pl: pad,
        pb: pad,
        pr: pad,
        oh: ih + 2 * pad - 2,
        ow: iw + 2 * pad - 2,
    }
}

/// Direct convolution in f64, with bias, residual and ReLU.
#[allow(clippy::too_many_arguments)]
fn direct(
    n: usize,
    c: usize,
    m: usize,
    g: &Window2d,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    res: &[f32],
) -> Vec<f32> {
    let mut y = vec![0.0; n * m * g.oh * g.ow];
    for img in 0..n {
        for o in 0..m {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = b[o] as f64;
                    for ci in 0..c {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = (oy + ky) as isize - g.pt as isize;
                                let ix = (ox + kx) as isize - g.pl as isize;
                                if iy < 0 || ix < 0 || iy >= g.ih as isize || ix >= g.iw as isize {
                                    continue;
                                }
                                let xv =
                                    x[((img * c + ci) * g.ih + iy as usize) * g.iw + ix as usize];
                                acc += xv as f64 * w[((o * c + ci) * 3 + ky) * 3 + kx] as f64;
                            }
                        }
                    }
                    let at = ((img * m + o) * g.oh + oy) * g.ow + ox;
                    y[at] = (acc as f32 + res[at]).max(0.0);
                }
            }
        }
    }
    y
}

/// Every window gather this CPU runs whose width divides the panels.
fn gathers() -> Vec<Gather> {
    let nr = PanelLayout::new(1, 1).nr();
    let isa = crate::gemm::Kernel::detect();
    let mut all = vec![];
    if isa == crate::gemm::Kernel::Avx512 {
        all.push(Gather::Avx512);
    }
    if matches!(isa, crate::gemm::Kernel::Avx512 | crate::gemm::Kernel::Avx2) {
        all.push(Gather::Avx2);
    }
    if cfg!(target_arch = "x86_64") {
        all.push(Gather::Scalar8);
    }
    all.push(Gather::Scalar4);
    all.retain(|g| nr.is_multiple_of(g.lanes()));
    all
}

#[test]
fn matches_direct_convolution() {
    // (images, C, M, ih, iw, pad): odd and even outputs, no padding, a depth past one KC block.
    let cases = [
        (3, 32, 64, 13, 13, 0),
        (1, 24, 24, 9, 20, 1),
        (2, 5, 7, 6, 7, 1),
        (1, 300, 16, 5, 6, 1),
        (4, 8, 40, 3, 3, 0),
        (1, 12, 10, 6, 9, 2),
    ];
    for (i, &(n, c, m, ih, iw, pad)) in cases.iter().enumerate() {
        let g = window(ih, iw, pad);
        let x = values(n * c * ih * iw, 1 + i as u32);
        let w = values(m * c * 9, 100 + i as u32);
        let b = values(m, 200 + i as u32);
        let res = values(n * m * g.oh * g.ow, 300 + i as u32);
        let want = direct(n, c, m, &g, &x, &w, &b, &res);
        // Without a residual (three threads run that case).
        let zeros = vec![0.0f32; res.len()];
        let want_plain = direct(n, c, m, &g, &x, &w, &b, &zeros);
        let runs = [1, 2, 3].into_iter().flat_map(|threads| {
            gathers()
                .into_iter()
                .flat_map(move |g| [2, 4].map(|tile| (threads, g, tile)))
        });
        for (threads, gather, tile) in runs {
            let wg = Winograd::with_tile(&w, c, m, g, tile).with_gather(gather);
            let mut y = vec![f32::NAN; want.len()];
            let mut scratch = vec![f32::NAN; wg.scratch_len(n, threads)];
            let relu = |v: f32| v.max(0.0);
            let r = if threads == 3 { None } else { Some(&res[..]) };
            let want = if threads == 3 { &want_plain } else { &want };
            let b = Some(&b[..]);
            // ReLU as a closure (an activation pass) or as a clamp (in the stores on AVX-512).
            if threads == 2 {
                let clamp = (0.0, f32::INFINITY);
                wg.run_clamped(n, &x, b, r, clamp, &mut y, &mut scratch, threads);
            } else {
                wg.run(n, &x, b, r, Some(relu), &mut y, &mut scratch, threads);
            }
            let scale = (c * 9) as f32;
            for (j, (a, e)) in y.iter().zip(want).enumerate() {
                assert!(
                    (a - e).abs() <= 1e-6 * scale,
                    "case {i}, {threads} threads, {gather:?}, {tile}×{tile}, element {j}: {a} vs {e}"
                );
            }
        }
    }
}

#[test]
fn the_cost_model_takes_large_tiles_where_they_fill_the_panels() {
    // Seed CNN's second convolution (16 images of 13×13): 4×4 tiles fill whole panels.
    let w = values(64 * 32 * 9, 1);
    assert_eq!(
        Winograd::new(&w, 32, 64, window(13, 13, 0), 16).tile_size(),
        4
    );
    // Its third (16 images of 5×5, 3×3 outputs): one 4×4 tile per image, 16 tiles, half a
    // panel, which the half-width micro-kernel takes at half the cost (65 against 107 µs on
    // Zen 4, one thread).
    let w = values(64 * 64 * 9, 2);
    assert_eq!(
        Winograd::new(&w, 64, 64, window(5, 5, 0), 16).tile_size(),
        4
    );
    // One image with a 6×6 output: four 4×4 tiles overhang it (64 pixels for 36), nine 2×2
    // tiles cover it exactly.
    let w = values(64 * 64 * 9, 3);
    assert_eq!(Winograd::new(&w, 64, 64, window(6, 6, 1), 1).tile_size(), 2);
}

#[test]
fn fits_only_3x3_stride_1() {
    let g = window(8, 8, 1);
    assert!(Winograd::fits(&g));
    assert!(!Winograd::fits(&Window2d { sh: 2, ..g }));
    assert!(!Winograd::fits(&Window2d { kw: 5, ..g }));
    assert!(!Winograd::fits(&Window2d { dh: 2, ..g }));
}

//! Every path of `sgemm` against a naive triple loop: a table of shapes × operand layouts ×
//! alpha/beta × threads, run for every micro-kernel family the CPU supports.

use super::*;

/// How an operand is stored.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Row-major inside a wider matrix (row stride cols + 3).
    RowPadded,
    /// Column-major inside a taller matrix (column stride rows + 2).
    ColPadded,
    /// Every other element of every other row: neither stride is 1.
    Gapped,
}

const LAYOUTS: [Layout; 5] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::RowPadded,
    Layout::ColPadded,
    Layout::Gapped,
];

struct Mat {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn new(rows: usize, cols: usize, layout: Layout, seed: u64) -> Mat {
        let (rs, cs) = match layout {
            Layout::RowMajor => (cols, 1),
            Layout::ColMajor => (1, rows),
            Layout::RowPadded => (cols + 3, 1),
            Layout::ColPadded => (1, rows + 2),
            Layout::Gapped => (4 * cols + 1, 2),
        };
        let len = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        };
        let mut s = Lcg(seed);
        let data = (0..len).map(|_| s.unit()).collect();
        Mat {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
    fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
    fn view(&self) -> MatRef<'_> {
        MatRef {
            data: &self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs as isize,
            cs: self.cs as isize,
        }
    }
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() % 2001) as f32 / 1000.0 - 1.0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.next() as usize % xs.len()]
    }
}

/// One call: which operands, which scalars, where c lives.
#[derive(Clone, Copy, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
    /// Extra columns of c past n (untouched by the product).
    ldc_pad: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
}

/// Which entry point a case goes through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    Plain,
    /// `pack_a` + `sgemm_packed`.
    PackedA,
    /// `pack_b` + `sgemm_packed_b`.
    PackedB,
}

/// Runs `case` through `kernel` by `path` and checks every element of c, including the
/// padding, against the naive product.
fn check(kernel: Kernel, case: Case, packed: impl Into<PathArg>) {
    let packed = packed.into().0;
    let Case {
        m,
        n,
        k,
        la,
        lb,
        ldc_pad,
        alpha,
        beta,
        threads,
    } = case;
    let seed = (m * 1_000_003 + n * 1009 + k) as u64;
    let a = Mat::new(m, k, la, seed);
    let b = Mat::new(k, n, lb, seed ^ 0x5555);
    let ldc = n + ldc_pad;
    let mut c0: Vec<f32> = {
        let mut s = Lcg(seed ^ 0xaaaa);
        (0..m * ldc).map(|_| s.unit()).collect()
    };
    if alpha == 0.0 {
        // Overwritten without being read: NaNs must not leak through.
        for i in 0..m {
            c0[i * ldc..i * ldc + n].fill(f32::NAN);
        }
    }
    let mut c = c0.clone();
    if packed == Path::PackedA {
        let p = pack_a_with(kernel, a.view(), m, k);
        sgemm_packed(&p, b.view(), &mut c, ldc, alpha, beta, threads);
    } else if packed == Path::PackedB {
        let p = pack_b_with(kernel, b.view(), k, n);
        sgemm_packed_b(a.view(), &p, &mut c, ldc, alpha, beta, threads);
    } else {
        sgemm_with(
            kernel,
            m,
            n,
            k,
            a.view(),
            b.view(),
            &mut c,
            ldc,
            alpha,
            beta,
            threads,
        );
    }
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j];
            let old = c0[i * ldc + j];
            if j >= n {
                assert_eq!(got.to_bits(), old.to_bits(), "{case:?} padding ({i},{j})");
                continue;
            }
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = a.get(i, p) as f64 * b.get(p, j) as f64;
                dot += t;
                mag += t.abs();
            }
            let keep = if alpha == 0.0 {
                0.0
            } else {
                alpha as f64 * old as f64
            };
            let want = keep + beta as f64 * dot;
            let tol = 1e-5 + 4e-7 * (k as f64 + 1.0) * (beta.abs() as f64 * mag + keep.abs());
            assert!(
                (got as f64 - want).abs() <= tol,
                "{kernel:?} {packed:?} {case:?} at ({i},{j}): got {got}, want {want}"
            );
        }
    }
}

/// `check`'s path argument: a `Path`, or a bool meaning `PackedA` when true.
struct PathArg(Path);
impl From<bool> for PathArg {
    fn from(packed: bool) -> Self {
        PathArg(if packed { Path::PackedA } else { Path::Plain })
    }
}
impl From<Path> for PathArg {
    fn from(p: Path) -> Self {
        PathArg(p)
    }
}

const DIMS: [usize; 12] = [1, 2, 3, 5, 7, 13, 16, 17, 31, 64, 100, 257];

/// A reproducible sample of the shape × layout × scalar space.
fn sampled_cases(count: usize, seed: u64) -> Vec<Case> {
    let mut s = Lcg(seed);
    let mut cases = vec![Case {
        m: 1,
        n: 1,
        k: 1,
        la: Layout::RowMajor,
        lb: Layout::RowMajor,
        ldc_pad: 0,
        alpha: 0.0,
        beta: 1.0,
        threads: 1,
    }];
    for _ in 0..count {
        cases.push(Case {
            m: s.pick(&DIMS),
            n: s.pick(&DIMS),
            k: s.pick(&DIMS),
            la: s.pick(&LAYOUTS),
            lb: s.pick(&LAYOUTS),
            ldc_pad: s.pick(&[0, 0, 3]),
            alpha: s.pick(&[0.0, 1.0, -0.5]),
            beta: s.pick(&[1.0, 2.0, -1.0, 0.0]),
            threads: s.pick(&[1, 2]),
        });
    }
    cases
}

#[test]
fn every_kernel_matches_naive_on_sampled_shapes() {
    for &kernel in Kernel::supported() {
        for case in sampled_cases(160, 7) {
            check(kernel, case, false);
        }
    }
}

#[test]
fn every_layout_pair_for_small_and_edge_shapes() {
    let shapes = [
        (1, 1, 1),
        (1, 17, 31),
        (13, 1, 17),
        (5, 7, 3),
        (17, 33, 13),
        (31, 16, 64),
        // Edge panels half wide or high (written in place) and under half (through the stack
        // tile), run by the half-width and half-height micro-kernels on x86.
        (16, 48, 9),
        (16, 40, 9),
        (20, 64, 9),
        (19, 40, 9),
    ];
    for &kernel in Kernel::supported() {
        for (m, n, k) in shapes {
            for la in LAYOUTS {
                for lb in LAYOUTS {
                    let case = Case {
                        m,
                        n,
                        k,
                        la,
                        lb,
                        ldc_pad: 2,
                        alpha: 0.5,
                        beta: -1.5,
                        threads: 1,
                    };
                    check(kernel, case, false);
                }
            }
        }
    }
}

#[test]
fn large_shapes_split_over_two_threads() {
    // Each is above PARALLEL_MIN_WORK, split along N, M, and the matrix-vector paths.
    let shapes = [
        (64, 600, 9),
        (300, 40, 33),
        (257, 257, 17),
        (1, 2048, 512),
        (2048, 1, 512),
        (20, 512, 600),
    ];
    for &kernel in Kernel::supported() {
        for (m, n, k) in shapes {
            for (la, lb) in [
                (Layout::RowMajor, Layout::RowMajor),
                (Layout::ColMajor, Layout::ColMajor),
                (Layout::RowMajor, Layout::ColMajor),
            ] {
                for (alpha, threads) in [(0.0, 2), (1.0, 2), (0.0, 3)] {
                    let case = Case {
                        m,
                        n,
                        k,
                        la,
                        lb,
                        ldc_pad: 1,
                        alpha,
                        beta: 1.0,
                        threads,
                    };
                    check(kernel, case, false);
                }
            }
        }
    }
}

#[test]
fn depth_longer_than_one_panel_accumulates() {
    // k > KC: later depth blocks must add to (not overwrite, not rescale) the first.
    for &kernel in Kernel::supported() {
        for k in [255, 256, 257, 700] {
            for alpha in [0.0, 1.0, 2.0] {
                let case = Case {
                    m: 19,
                    n: 37,
                    k,
                    la: Layout::RowMajor,
                    lb: Layout::RowMajor,
                    ldc_pad: 0,
                    alpha,
                    beta: 0.75,
                    threads: 1,
                };
                check(kernel, case, false);
            }
        }
    }
}

#[test]
fn row_major_b_read_in_place_gives_the_packed_bits() {
    // A row-major B whose rows start at 8 or more offsets modulo 4 KiB is read where it lies
    // on AVX-512 (`driver::direct_b`); the same values 512 floats apart are packed first. The
    // sums are the same in the same order, so the bits must be too: partial strips (70 = 2·32
    // + 6 columns), a partial row tile (19 = 2·8 + 3), two depth blocks (300 > KC), both
    // alphas, one thread and two, plain and with A packed (the convolutions' path).
    let (m, k, n) = (19, 300, 70);
    let a = Mat::new(m, k, Layout::RowMajor, 11);
    let mut s = Lcg(12);
    let vals: Vec<f32> = (0..k * n).map(|_| s.unit()).collect();
    let strided = |rs: usize| {
        let mut d = vec![f32::NAN; (k - 1) * rs + n];
        for (p, row) in vals.chunks_exact(n).enumerate() {
            d[p * rs..p * rs + n].copy_from_slice(row);
        }
        d
    };
    let (near, far) = (strided(n), strided(512));
    fn view(d: &[f32], k: usize, n: usize, rs: usize) -> MatRef<'_> {
        MatRef {
            data: d,
            rows: k,
            cols: n,
            rs: rs as isize,
            cs: 1,
        }
    }
    for &kernel in Kernel::supported() {
        let isa = kernel.isa();
        let raw = |d: &[f32], rs| driver::Raw {
            ptr: d.as_ptr(),
            rs,
            cs: 1,
        };
        let in_place = driver::direct_b(isa, raw(&near, n)).is_some();
        assert_eq!(in_place, kernel == Kernel::Avx512, "{kernel:?}");
        assert!(
            driver::direct_b(isa, raw(&far, 512)).is_none(),
            "2 KiB rows"
        );
        let pa = pack_a_with(kernel, a.view(), m, k);
        for (alpha, threads) in [(0.0, 1), (1.0, 1), (0.0, 2), (1.0, 2)] {
            let c0: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32 - 3.0).collect();
            let run = |b: MatRef| {
                let mut c = c0.clone();
                sgemm_with(kernel, m, n, k, a.view(), b, &mut c, n, alpha, 0.5, threads);
                let mut cp = c0.clone();
                sgemm_packed(&pa, b, &mut cp, n, alpha, 0.5, threads);
                (c, cp)
            };
            let (got, want) = (run(view(&near, k, n, n)), run(view(&far, k, n, 512)));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got.0),
                bits(&want.0),
                "{kernel:?} alpha {alpha} threads {threads}"
            );
            assert_eq!(
                bits(&got.1),
                bits(&want.1),
                "{kernel:?} packed A, alpha {alpha}"
            );
        }
    }
}

#[test]
fn packed_a_matches_naive() {
    let mut cases = sampled_cases(60, 11);
    cases.push(Case {
        m: 64,
        n: 700,
        k: 300,
        la: Layout::RowMajor,
        lb: Layout::RowMajor,
        ldc_pad: 0,
        alpha: 0.0,
        beta: 1.0,
        threads: 2,
    });
    cases.push(Case {
        m: 1,
        n: 300,
        k: 600,
        la: Layout::Gapped,
        lb: Layout::RowMajor,
        ldc_pad: 0,
        alpha: 1.0,
        beta: 1.0,
        threads: 1,
    });
    for &kernel in Kernel::supported() {
        for &case in &cases {
            check(kernel, case, true);
        }
    }
}

/// The tile epilogue sees every output element exactly once, after its full depth: adding
/// `row·1000 + col` in the epilogue equals adding it after a plain product.
#[test]
fn tile_epilogue_runs_once_per_element_after_the_full_depth() {
    for &kernel in Kernel::supported() {
        for (m, n, k, threads) in [
            (37, 300, 700, 2),
            (1, 90, 40, 1),
            (8, 33, 0, 1),
            (64, 2100, 20, 2),
        ] {
            let a = Mat::new(m, k, Layout::RowMajor, 3);
            let b = Mat::new(k, n, Layout::RowMajor, 4);
            let p = pack_a_with(kernel, a.view(), m, k);
            let (mut want, mut got) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
            sgemm_packed(&p, b.view(), &mut want, n, 0.0, 1.0, threads);
            for (i, row) in want.chunks_exact_mut(n).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (*v + (i * 1000 + j) as f32).max(0.0);
                }
            }
            let epi = |row: usize, col: usize, seg: &mut [f32]| {
                for (j, v) in seg.iter_mut().enumerate() {
                    *v = (*v + (row * 1000 + col + j) as f32).max(0.0);
                }
            };
            sgemm_packed_epi(
                &p,
                b.view(),
                &mut got,
                n,
                0.0,
                1.0,
                threads,
                Some(Epi::Tile(&epi)),
            );
            assert_eq!(got, want, "{kernel:?} {m}x{n}x{k} threads {threads}");
            // The same on the calling thread with a caller's workspace (poisoned, exactly
            // the size asked for, at an odd offset so the alignment slack is used).
            let mut ws = vec![f32::NAN; rhs_workspace(&p, n) + 1];
            let mut got = vec![0.0f32; m * n];
            sgemm_packed_epi_in(
                &p,
                b.view(),
                &mut got,
                n,
                0.0,
                1.0,
                Some(Epi::Tile(&epi)),
                &mut ws[1..],
            );
            assert_eq!(got, want, "{kernel:?} {m}x{n}x{k} in a workspace");
        }
    }
}

/// Bias and clamp in the micro-kernels' registers give the bits of the same product followed
/// by `Fused::one` over every element: full tiles, edge tiles through the stack tile (19 rows,
/// 70 and 2100 columns) and in place (20 rows, 48 columns), two depth blocks, B packed and read in place, the matrix-vector and
/// empty-depth paths, a NaN row, zero biases and no bias.
#[test]
fn row_epilogue_in_registers_equals_the_scalar_one() {
    for &kernel in Kernel::supported() {
        for (m, n, k, threads, rs) in [
            (19, 70, 300, 1, 70),
            (19, 70, 300, 2, 512),
            // Half-height and half-width edge tiles stored in place (x86).
            (20, 48, 40, 1, 48),
            (20, 48, 40, 1, 512),
            (16, 2100, 20, 2, 2100),
            (1, 90, 40, 1, 90),
            (8, 33, 0, 1, 33),
        ] {
            let mut a = Mat::new(m, k, Layout::RowMajor, 5);
            if k > 0 && m > 3 {
                a.data[3 * k] = f32::NAN;
            }
            let bm = Mat::new(k, n, Layout::RowMajor, 6);
            let mut bd = vec![0.0f32; k.saturating_sub(1) * rs + n];
            for p in 0..k {
                bd[p * rs..p * rs + n].copy_from_slice(&bm.data[p * n..p * n + n]);
            }
            let b = MatRef {
                data: &bd,
                rows: k,
                cols: n,
                rs: rs as isize,
                cs: 1,
            };
            let bias: Vec<f32> = (0..m)
                .map(|i| {
                    if i % 3 == 0 {
                        0.0
                    } else {
                        i as f32 * 0.37 - 2.0
                    }
                })
                .collect();
            let p = pack_a_with(kernel, a.view(), m, k);
            for (bias, clamp) in [
                (Some(&bias[..]), Some((0.0, 6.0))),
                (Some(&bias[..]), None),
                (None, Some((-0.5, f32::INFINITY))),
                (None, None),
            ] {
                let mut want = vec![0.0f32; m * n];
                sgemm_packed(&p, b, &mut want, n, 0.0, 1.0, threads);
                for (i, row) in want.chunks_exact_mut(n).enumerate() {
                    let bi = bias.map_or(0.0, |b| b[i]);
                    row.iter_mut()
                        .for_each(|v| *v = isa::Fused::one(*v, bi, clamp));
                }
                let epi = Epi::Rows(RowEpi { bias, clamp });
                let mut got = vec![f32::NAN; m * n];
                sgemm_packed_epi(&p, b, &mut got, n, 0.0, 1.0, threads, Some(epi));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let what = format!("{kernel:?} {m}x{n}x{k} rs {rs} threads {threads}");
                assert_eq!(bits(&got), bits(&want), "{what} {bias:?} {clamp:?}");
                if clamp == Some((0.0, 6.0)) && m > 3 && k > 0 {
                    assert!(
                        got[3 * n..4 * n].iter().all(|&v| v == 0.0),
                        "{what}: NaN row"
                    );
                }
            }
        }
    }
}

#[test]
fn packed_b_matches_naive() {
    let mut cases = sampled_cases(60, 13);
    for (m, n, k, threads) in [
        (20, 700, 600, 2),
        (1, 2100, 600, 2),
        (1, 33, 5, 1),
        (9, 65, 257, 1),
        // Packed by several threads (over 2^20 floats), with a last run of strips cut short.
        (3, 2100, 520, 1),
    ] {
        cases.push(Case {
            m,
            n,
            k,
            la: Layout::RowMajor,
            lb: Layout::ColMajor,
            ldc_pad: 3,
            alpha: 1.0,
            beta: 0.5,
            threads,
        });
    }
    for &kernel in Kernel::supported() {
        for &case in &cases {
            check(kernel, case, Path::PackedB);
        }
    }
}

#[test]
fn every_kernel_agrees_with_portable() {
    let (m, n, k) = (45, 77, 300);
    let a = Mat::new(m, k, Layout::RowMajor, 1);
    let b = Mat::new(k, n, Layout::ColPadded, 2);
    let run = |kernel| {
        let mut c = vec![f32::NAN; m * n];
        sgemm_with(kernel, m, n, k, a.view(), b.view(), &mut c, n, 0.0, 1.0, 1);
        c
    };
    let want = run(Kernel::Portable);
    for &kernel in Kernel::supported() {
        for (x, y) in run(kernel).iter().zip(&want) {
            assert!((x - y).abs() <= 1e-4, "{kernel:?}: {x} vs {y}");
        }
    }
}

#[test]
fn zero_depth_scales_c() {
    for alpha in [0.0, 2.0] {
        let mut c = vec![f32::NAN, 1.0, 3.0, f32::NAN];
        if alpha != 0.0 {
            c = vec![1.0, 2.0, 3.0, 4.0];
        }
        let e = MatRef::row_major(&[], 2, 0);
        let f = MatRef::row_major(&[], 0, 2);
        sgemm(2, 2, 0, e, f, &mut c, 2, alpha, 1.0, 1);
        let want = if alpha == 0.0 {
            vec![0.0; 4]
        } else {
            vec![2.0, 4.0, 6.0, 8.0]
        };
        assert_eq!(c, want);
    }
}

#[test]
fn zero_strides_broadcast() {
    // A view repeating one row (rs = 0) and one repeating one column (cs = 0).
    let (m, n, k) = (9, 40, 20);
    let arow: Vec<f32> = (0..k).map(|i| i as f32 * 0.1).collect();
    let bcol: Vec<f32> = (0..k).map(|i| 1.0 - i as f32 * 0.05).collect();
    let a = MatRef {
        data: &arow,
        rows: m,
        cols: k,
        rs: 0,
        cs: 1,
    };
    let b = MatRef {
        data: &bcol,
        rows: k,
        cols: n,
        rs: 1,
        cs: 0,
    };
    let want: f32 = arow.iter().zip(&bcol).map(|(x, y)| x * y).sum();
    for &kernel in Kernel::supported() {
        let mut c = vec![f32::NAN; m * n];
        sgemm_with(kernel, m, n, k, a, b, &mut c, n, 0.0, 1.0, 1);
        assert!(c.iter().all(|v| (v - want).abs() < 1e-4), "{kernel:?}");
    }
}

#[test]
#[should_panic(expected = "out of bounds")]
fn short_output_panics() {
    let a = [1.0; 4];
    let mut c = [0.0; 3];
    sgemm(
        2,
        2,
        2,
        MatRef::row_major(&a, 2, 2),
        MatRef::row_major(&a, 2, 2),
        &mut c,
        2,
        0.0,
        1.0,
        1,
    );
}

#[test]
fn panel_products_by_row_ranges_match_naive() {
    // (m, k, n): a partial row strip, a depth past one KC block, a half panel of columns.
    for &(m, k, n) in &[(20, 7, 40), (33, 300, 16), (8, 32, 70)] {
        let a = Mat::new(m, k, Layout::RowMajor, 11);
        let b = Mat::new(k, n, Layout::RowMajor, 12);
        let layout = PanelLayout::new(k, n);
        let mut panels = vec![0.0f32; layout.len()];
        for p in 0..k {
            for j in 0..n {
                panels[layout.at(p, j)] = b.get(p, j);
            }
        }
        let pa = pack_a(a.view(), m, k);
        let mr = pa.mr();
        let ldc = n + 5;
        let mut c = vec![f32::NAN; m * ldc];
        // Two row ranges, the first a whole number of strips, and one range left out.
        let cut = mr.min(m);
        let last = m.saturating_sub(3).max(cut);
        sgemm_panels_rows(&pa, &panels, &layout, &mut c, ldc, 0..cut);
        sgemm_panels_rows(&pa, &panels, &layout, &mut c, ldc, cut..last);
        for i in 0..m {
            for j in 0..n {
                let got = c[i * ldc + j];
                if i >= last {
                    assert!(got.is_nan(), "row {i} outside the ranges was written");
                    continue;
                }
                let want: f64 = (0..k)
                    .map(|p| a.get(i, p) as f64 * b.get(p, j) as f64)
                    .sum();
                assert!(
                    (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{m}x{k}x{n}: c[{i}][{j}] = {got}, want {want}"
                );
            }
        }
        // The whole product through `sgemm_panels` agrees.
        let mut full = vec![0.0f32; m * ldc];
        sgemm_panels(&pa, &panels, &layout, &mut full, ldc);
        for i in 0..last {
            assert_eq!(full[i * ldc..i * ldc + n], c[i * ldc..i * ldc + n]);
        }
    }
}

#[test]
fn packed_b_column_ranges_match_naive_with_their_epilogue() {
    // (m, k, n): 7 × 7 pixels by channels as the transposed pointwise convolution runs them,
    // a depth past one KC block, a short edge panel, and a single row.
    for &(m, k, n) in &[(49, 40, 192), (20, 300, 70), (1, 9, 40), (9, 0, 33)] {
        let a = Mat::new(m, k, Layout::ColMajor, 21);
        let b = Mat::new(k, n, Layout::RowMajor, 22);
        let pb = pack_b(b.view(), k, n);
        let nr = pb.panel_width();
        let mut ws = vec![0.0f32; lhs_workspace(m, k)];
        // Columns cut at a panel boundary, each range into its own buffer.
        let cut = (n / 2).next_multiple_of(nr).min(n);
        for cols in [0..cut, cut..n] {
            let w = cols.len();
            let ldc = w + 3;
            let mut c = vec![f32::NAN; m * ldc];
            let seen = std::sync::Mutex::new(vec![0u32; m * w]);
            let start = cols.start;
            let epi = |i: usize, j0: usize, seg: &mut [f32]| {
                let mut seen = seen.lock().unwrap();
                for (d, v) in seg.iter_mut().enumerate() {
                    seen[i * w + j0 + d - start] += 1;
                    *v += (j0 + d) as f32;
                }
            };
            sgemm_packed_b_cols_in(
                a.view(),
                &pb,
                cols.clone(),
                &mut c,
                ldc,
                0.0,
                1.0,
                Some(&epi),
                &mut ws,
            );
            assert!(
                seen.into_inner().unwrap().iter().all(|&s| s == 1),
                "{m}x{k}x{n} {cols:?}: epilogue once per element"
            );
            for i in 0..m {
                for j in cols.clone() {
                    let want: f64 = (0..k)
                        .map(|p| a.get(i, p) as f64 * b.get(p, j) as f64)
                        .sum::<f64>()
                        + j as f64;
                    let got = c[i * ldc + j - start];
                    assert!(
                        (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{m}x{k}x{n} {cols:?}: c[{i}][{j}] = {got}, want {want}"
                    );
                }
                assert!(
                    c[i * ldc + w..(i + 1) * ldc].iter().all(|v| v.is_nan()),
                    "padding written"
                );
            }
        }
    }
}

/// One-row products over column ranges (`sgemv_packed_b_cols`) are bit-identical to the
/// whole row's (`sgemm_packed_b`), with `alpha` 0 (NaN in `c` ignored) and 1 (accumulate),
/// for ranges ending mid-panel and at the matrix's short last panel, a depth past one KC block,
/// and depth 0; nothing past the range is written.
#[test]
fn row_column_ranges_match_the_whole_row() {
    for &(k, n) in &[(128, 512), (300, 70), (9, 40), (0, 33)] {
        let a = Mat::new(1, k, Layout::RowMajor, 31);
        let b = Mat::new(k, n, Layout::RowMajor, 32);
        let pb = pack_b(b.view(), k, n);
        let nr = pb.panel_width();
        let row: Vec<f32> = (0..k).map(|p| a.view().data[p]).collect();
        let prior: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 3.0).collect();
        for (alpha, init) in [(0.0f32, f32::NAN), (1.0, 0.0)] {
            let mut whole: Vec<f32> = prior
                .iter()
                .map(|&v| if alpha == 0.0 { init } else { v })
                .collect();
            sgemm_packed_b(a.view(), &pb, &mut whole, n, alpha, 1.0, 1);
            let ends = [n.min(nr + 5), n];
            for cols in [0..ends[0], (n / 2 / nr * nr)..ends[1]] {
                let mut c: Vec<f32> = cols
                    .clone()
                    .map(|j| if alpha == 0.0 { init } else { prior[j] })
                    .chain([7.0; 3])
                    .collect();
                sgemv_packed_b_cols(&row, &pb, cols.clone(), &mut c, alpha, 1.0);
                let w = cols.len();
                assert_eq!(
                    &c[..w],
                    &whole[cols.clone()],
                    "k {k} n {n} {cols:?} alpha {alpha}"
                );
                assert_eq!(
                    &c[w..],
                    &[7.0; 3],
                    "k {k} n {n} {cols:?}: written past the range"
                );
            }
        }
    }
}

//! Integer products of a few activation columns over weight rows interleaved in blocks of 16:
//! for each group of four values of k, the four bytes of 16 consecutive rows side by side (64
//! bytes), so one AVX-512 VNNI `vpdpbusd` multiplies 16 rows by four broadcast u8 activations
//! and the 16 sums stay in their lanes — no horizontal sum per row, as [`super::gemv`] and a
//! one-column [`super::QWeights`] product need, and no 16-column panel to fill. A dynamically
//! quantized LSTM/GRU at batch 1: each step's `[G·H, H]` times h, and the input projection of
//! all steps (a tile multiplies four columns by four blocks, 16 accumulators).
//!
//! The sums `Σ_k (x[k] − zx)·w[m][k]` are computed as `Σ x·w − zx·Σw` (exact in i32 for `k`
//! below 2^15) and become f32 through the expression of the kernel they replace ([`Epi`]):
//! `gemv`'s or `QWeights::run_dynamic`'s, so either path gives the same bits. Other CPUs run
//! the same layout in plain Rust.

use std::ops::Range;

use super::{clamp, Epilogue, OutKind, QKernel};

/// Rows per block: one 512-bit vector of i32 sums.
const BLOCK: usize = 16;

/// i8 weights `[m, k]` packed as blocks of 16 rows, with their row sums.
#[derive(Debug, Clone)]
pub struct RowBlocks {
    m: usize,
    k: usize,
    /// Groups of four along k (k padded with zero weights).
    kg: usize,
    /// `[m / 16 (rounded up)][kg][16]`: each i32 the four bytes `4g..4g + 4` of one row.
    w: Vec<i32>,
    /// `Σ_k w[m][k]` per row, padded with zeros to whole blocks.
    sums: Vec<i32>,
}

impl RowBlocks {
    /// Packs `w` (`m × k`, row-major). Panics if `w` is not `m × k` or `k ≥ 2^15`.
    pub fn new(w: &[i8], m: usize, k: usize) -> RowBlocks {
        assert!(
            w.len() == m * k && k < 1 << 15,
            "row_blocks: weights are not {m} × {k} (k < 32768)"
        );
        let kg = k.div_ceil(4);
        let blocks = m.div_ceil(BLOCK);
        let mut packed = vec![0i32; blocks * kg * BLOCK];
        let mut sums = vec![0i32; blocks * BLOCK];
        for (r, row) in w.chunks_exact(k.max(1)).take(m).enumerate() {
            let (b, lane) = (r / BLOCK, r % BLOCK);
            for (g, quad) in row.chunks(4).enumerate() {
                let mut bytes = [0u8; 4];
                for (d, &v) in bytes.iter_mut().zip(quad) {
                    *d = v as u8;
                }
                packed[(b * kg + g) * BLOCK + lane] = i32::from_le_bytes(bytes);
            }
            sums[r] = row.iter().map(|&v| v as i32).sum();
        }
        RowBlocks {
            m,
            k,
            kg,
            w: packed,
            sums,
        }
    }

    /// Whether this CPU runs the layout's own kernel (AVX-512 VNNI), where it beats `gemv`'s
    /// i16 rows.
    pub fn pays() -> bool {
        QKernel::detect() == QKernel::Avx512Vnni
    }

    pub fn rows(&self) -> usize {
        self.m
    }

    /// Bytes of x that [`RowBlocks::run`] reads: k rounded up to a multiple of 4 (the bytes
    /// past k meet zero weights; any value does).
    pub fn x_bytes(&self) -> usize {
        4 * self.kg
    }

    /// The products of columns `0..cols` of `x` (column `p` at `x[p·ldx..]`, quantized with
    /// zero point `zx`, 0..=255, and scale `sx`) with rows `rows` of the weights: the exact sum
    /// `acc = Σ_k (x[p][k] − zx)·w[m][k]` becomes, through `epi`, element
    /// `y[p·ldy + m − rows.start]`. Panics if `rows` passes the weights, a column of `x` holds
    /// fewer than [`RowBlocks::x_bytes`], or `y` or the epilogue's rows are short.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        x: &[u8],
        ldx: usize,
        cols: usize,
        zx: i32,
        sx: f32,
        rows: Range<usize>,
        epi: Epi,
        y: &mut [f32],
        ldy: usize,
    ) {
        let per_row = match epi {
            Epi::Scaled { scale, .. } => scale.len(),
            Epi::Dynamic { epi, .. } => epi.mult.len().min(epi.add.len()),
        };
        let fits = |n: usize, ld: usize, last: usize| cols == 0 || (cols - 1) * ld + last <= n;
        assert!(
            rows.start <= rows.end
                && rows.end <= self.m
                && per_row >= rows.end
                && fits(x.len(), ldx, self.x_bytes())
                && fits(y.len(), ldy, rows.len())
                && (0..=255).contains(&zx)
                && (matches!(epi, Epi::Scaled { .. })
                    || matches!(epi, Epi::Dynamic { epi, .. } if matches!(epi.kind, OutKind::F32 { .. }))),
            "row_blocks: operands do not match {} rows of {}",
            self.m,
            self.k
        );
        if rows.is_empty() || cols == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if Self::pays() {
            let job = Job {
                rb: self,
                x,
                ldx,
                zx,
                sx,
                epi,
                row0: rows.start,
                ldy,
            };
            // SAFETY: VNNI (`pays`); the bounds are checked above.
            return unsafe { vnni::run(&job, cols, rows, y) };
        }
        self.portable(x, ldx, cols, zx, sx, rows, epi, y, ldy)
    }

    /// [`RowBlocks::run`] in plain Rust, on operands it checked.
    #[allow(clippy::too_many_arguments)]
    fn portable(
        &self,
        x: &[u8],
        ldx: usize,
        cols: usize,
        zx: i32,
        sx: f32,
        rows: Range<usize>,
        epi: Epi,
        y: &mut [f32],
        ldy: usize,
    ) {
        for p in 0..cols {
            let xp = &x[p * ldx..];
            for m in rows.clone() {
                let (b, lane) = (m / BLOCK, m % BLOCK);
                let mut acc = 0i32;
                for g in 0..self.kg {
                    let w = self.w[(b * self.kg + g) * BLOCK + lane].to_le_bytes();
                    for (d, &wv) in w.iter().enumerate() {
                        acc += xp[4 * g + d] as i32 * wv as i8 as i32;
                    }
                }
                let acc = acc.wrapping_sub(zx.wrapping_mul(self.sums[m]));
                epi.store(&mut y[p * ldy + m - rows.start], acc, sx, m);
            }
        }
    }
}

/// What the sums of a [`RowBlocks::run`] become: one of the two expressions the callers'
/// other kernels use, so either path gives the same bits.
#[derive(Clone, Copy, Debug)]
pub enum Epi<'a> {
    /// [`super::gemv::gemv`]'s: `acc as f32 · (sx·scale[m])`, stored or added.
    Scaled { scale: &'a [f32], accumulate: bool },
    /// [`super::QWeights::run_dynamic`]'s (an `OutKind::F32` epilogue):
    /// `clamp(acc as f32 · (mult[m]·sx) + add[m], lo, hi)`, stored or added.
    Dynamic { epi: &'a Epilogue, accumulate: bool },
}

impl Epi<'_> {
    /// Row `m`'s element.
    #[inline(always)]
    fn store(&self, y: &mut f32, acc: i32, sx: f32, m: usize) {
        let (v, accumulate) = match *self {
            Epi::Scaled { scale, accumulate } => (acc as f32 * (sx * scale[m]), accumulate),
            Epi::Dynamic { epi, accumulate } => {
                let (lo, hi) = match epi.kind {
                    OutKind::F32 { lo, hi } => (lo, hi),
                    OutKind::Int { .. } => unreachable!("checked by `run`"),
                };
                let v = acc as f32 * (epi.mult[m] * sx) + epi.add[m];
                (clamp(v, lo, hi), accumulate)
            }
        };
        if accumulate {
            *y += v;
        } else {
            *y = v;
        }
    }
}

/// One product's operands, for the x86 kernel.
#[cfg(target_arch = "x86_64")]
struct Job<'a> {
    rb: &'a RowBlocks,
    x: &'a [u8],
    ldx: usize,
    zx: i32,
    sx: f32,
    epi: Epi<'a>,
    /// The first row computed: `y`'s row 0.
    row0: usize,
    ldy: usize,
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Epi, Job, BLOCK};
    use crate::qgemm::OutKind;

    /// Columns of x per tile.
    const COLS: usize = 4;
    /// Blocks of rows per tile.
    const BLOCKS: usize = 4;

    /// The sums of blocks `b0..b0 + N` with columns `p0..p0 + C`, minus `zx·Σw`, in registers.
    ///
    /// # Safety
    /// AVX-512F/VNNI; the blocks and the columns exist (checked by `RowBlocks::run`).
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn tile<const C: usize, const N: usize>(
        job: &Job,
        p0: usize,
        b0: usize,
    ) -> [[__m512i; N]; C] {
        let kg = job.rb.kg;
        let w = job.rb.w.as_ptr().add(b0 * kg * BLOCK);
        let xp: [*const i32; C] =
            std::array::from_fn(|c| job.x.as_ptr().add((p0 + c) * job.ldx) as *const i32);
        let mut acc = [[_mm512_setzero_si512(); N]; C];
        for g in 0..kg {
            // SAFETY: group g of each column and of each block lies within the checked lengths.
            let wv: [__m512i; N] =
                std::array::from_fn(
                    |j| _mm512_loadu_si512(w.add((j * kg + g) * BLOCK) as *const _),
                );
            for (c, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_epi32(xp[c].add(g).read_unaligned());
                for (a, &wj) in row.iter_mut().zip(&wv) {
                    *a = _mm512_dpbusd_epi32(*a, xv, wj);
                }
            }
        }
        let z = _mm512_set1_epi32(job.zx);
        for j in 0..N {
            let s = _mm512_loadu_si512(job.rb.sums.as_ptr().add((b0 + j) * BLOCK) as *const _);
            let zs = _mm512_mullo_epi32(z, s);
            for row in acc.iter_mut() {
                row[j] = _mm512_sub_epi32(row[j], zs);
            }
        }
        acc
    }

    /// [`Epi::store`] for the 16 rows from `m` (all within the product's rows) at `out`.
    ///
    /// # Safety
    /// AVX-512F; the rows lie within the epilogue's and `out` holds 16 floats.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(job: &Job, acc: __m512i, m: usize, out: *mut f32) {
        let sxv = _mm512_set1_ps(job.sx);
        let f = _mm512_cvtepi32_ps(acc);
        let (mut v, accumulate) = match job.epi {
            Epi::Scaled { scale, accumulate } => {
                let mult = _mm512_mul_ps(sxv, _mm512_loadu_ps(scale.as_ptr().add(m)));
                (_mm512_mul_ps(f, mult), accumulate)
            }
            Epi::Dynamic { epi, accumulate } => {
                let OutKind::F32 { lo, hi } = epi.kind else {
                    unreachable!("checked by `run`")
                };
                let mult = _mm512_mul_ps(_mm512_loadu_ps(epi.mult.as_ptr().add(m)), sxv);
                let add = _mm512_loadu_ps(epi.add.as_ptr().add(m));
                let v = _mm512_add_ps(_mm512_mul_ps(f, mult), add);
                // `qgemm::clamp`: `v > lo ? v : lo`, then `v < hi ? v : hi` (NaN gives lo).
                let v = _mm512_max_ps(v, _mm512_set1_ps(lo));
                (_mm512_min_ps(v, _mm512_set1_ps(hi)), accumulate)
            }
        };
        if accumulate {
            v = _mm512_add_ps(_mm512_loadu_ps(out), v);
        }
        _mm512_storeu_ps(out, v);
    }

    /// Columns `p0..p0 + C` of blocks `b0..b0 + N`, each block wholly within the rows.
    ///
    /// # Safety
    /// As [`tile`]; `y` as `RowBlocks::run` checked it.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn whole<const C: usize, const N: usize>(
        job: &Job,
        y: &mut [f32],
        p0: usize,
        b0: usize,
    ) {
        let acc = tile::<C, N>(job, p0, b0);
        for (c, row) in acc.iter().enumerate() {
            for (j, &a) in row.iter().enumerate() {
                let m = (b0 + j) * BLOCK;
                let out = y.as_mut_ptr().add((p0 + c) * job.ldy + m - job.row0);
                store(job, a, m, out);
            }
        }
    }

    /// Columns `p0..p0 + C` over the whole blocks `first..end`, [`BLOCKS`] at a time.
    ///
    /// # Safety
    /// As [`whole`].
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn columns<const C: usize>(
        job: &Job,
        y: &mut [f32],
        p0: usize,
        first: usize,
        end: usize,
    ) {
        let mut b = first;
        while b + BLOCKS <= end {
            whole::<C, BLOCKS>(job, y, p0, b);
            b += BLOCKS;
        }
        while b < end {
            whole::<C, 1>(job, y, p0, b);
            b += 1;
        }
    }

    /// [`super::RowBlocks::run`] on AVX-512 VNNI: tiles of [`COLS`] columns by [`BLOCKS`]
    /// whole blocks; a block cut by `rows` through an array, its rows stored one by one.
    ///
    /// # Safety
    /// AVX-512F/VNNI; the operands checked by `RowBlocks::run`, `cols` ≥ 1 and `rows` not
    /// empty.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn run(job: &Job, cols: usize, rows: Range<usize>, y: &mut [f32]) {
        // Whole blocks: from the first block starting in `rows` to the last ending in it.
        let first = rows.start.div_ceil(BLOCK);
        let end = (rows.end / BLOCK).max(first);
        let mut p = 0;
        while p + COLS <= cols {
            columns::<COLS>(job, y, p, first, end);
            p += COLS;
        }
        match cols - p {
            1 => columns::<1>(job, y, p, first, end),
            2 => columns::<2>(job, y, p, first, end),
            3 => columns::<3>(job, y, p, first, end),
            _ => {}
        }
        // The cut blocks at either end (one block, if `rows` lies within it).
        let cut = [rows.start / BLOCK, (rows.end - 1) / BLOCK];
        for (i, &b) in cut.iter().enumerate() {
            let lo = rows.start.max(b * BLOCK);
            let hi = rows.end.min((b + 1) * BLOCK);
            let whole_block = lo == b * BLOCK && hi == (b + 1) * BLOCK;
            if whole_block || (i == 1 && cut[0] == cut[1]) {
                continue;
            }
            for p in 0..cols {
                let mut acc = [0i32; BLOCK];
                _mm512_storeu_si512(acc.as_mut_ptr() as *mut _, tile::<1, 1>(job, p, b)[0][0]);
                for m in lo..hi {
                    let out = &mut y[p * job.ldy + m - job.row0];
                    job.epi.store(out, acc[m % BLOCK], job.sx, m);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Column counts and row ranges of a few shapes (a block cut at either end, within one
    /// block, whole blocks, k not a multiple of 4) against the definition, bit for bit with
    /// each epilogue's expression.
    #[test]
    fn row_blocks_match_the_definition() {
        for (m, k) in [(37, 131), (512, 128), (16, 4), (5, 1), (80, 0)] {
            let w: Vec<i8> = (0..m * k)
                .map(|i| ((i * 37 % 256) as i32 - 128) as i8)
                .collect();
            let rb = RowBlocks::new(&w, m, k);
            let ldx = k + 3;
            let x: Vec<u8> = (0..7 * ldx + 4).map(|i| (i * 91 % 256) as u8).collect();
            let zx = 131;
            let scale: Vec<f32> = (0..m).map(|i| 0.001 * (i + 1) as f32).collect();
            let dynamic = Epilogue {
                mult: scale.clone(),
                add: (0..m).map(|i| i as f32 - 3.0).collect(),
                kind: OutKind::F32 { lo: -2.0, hi: 50.0 },
            };
            let ranges = [
                0..m,
                3.min(m)..m,
                0..m.saturating_sub(5),
                17.min(m)..33.min(m),
            ];
            for (rows, cols) in ranges.into_iter().zip([1, 7, 4, 2]) {
                for accumulate in [false, true] {
                    let epis = [
                        Epi::Scaled {
                            scale: &scale,
                            accumulate,
                        },
                        Epi::Dynamic {
                            epi: &dynamic,
                            accumulate,
                        },
                    ];
                    for epi in epis {
                        let ldy = rows.len() + 2;
                        let mut y: Vec<f32> = (0..cols * ldy).map(|i| i as f32 * 0.25).collect();
                        let mut want = y.clone();
                        let mut plain = y.clone();
                        rb.run(&x, ldx, cols, zx, 0.5, rows.clone(), epi, &mut y, ldy);
                        rb.portable(&x, ldx, cols, zx, 0.5, rows.clone(), epi, &mut plain, ldy);
                        for p in 0..cols {
                            for r in rows.clone() {
                                let acc: i32 = (0..k)
                                    .map(|c| (x[p * ldx + c] as i32 - zx) * w[r * k + c] as i32)
                                    .sum();
                                epi.store(&mut want[p * ldy + r - rows.start], acc, 0.5, r);
                            }
                        }
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&y),
                            bits(&want),
                            "{m}×{k} rows {rows:?}, {cols} columns, {epi:?}"
                        );
                        assert_eq!(bits(&plain), bits(&want), "plain Rust, {m}×{k} {rows:?}");
                    }
                }
            }
        }
    }
}

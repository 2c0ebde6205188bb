//! One-column integer products over weight rows interleaved in blocks of 16: for each group of
//! four values of k, the four bytes of 16 consecutive rows side by side (64 bytes), so one
//! AVX-512 VNNI `vpdpbusd` multiplies 16 rows by four broadcast u8 activations and the 16 sums
//! stay in their lanes — no horizontal sum per row, as [`super::gemv`] and a one-column
//! [`super::QWeights`] product need. The recurrent step of a dynamically quantized LSTM/GRU at
//! batch 1 (`[G·H, H]` times h).
//!
//! `y[m] (+)= sx·scale[m]·Σ_k (x[k] − zx)·w[m][k]`, computed as `Σ x·w − zx·Σw` (exact in
//! i32 for `k` below 2^15) and scaled as `acc as f32 · (sx·scale[m])`, the same expression as
//! `gemv`, so either gives the same bits. Other CPUs run the same layout in plain Rust.

use std::ops::Range;

use super::QKernel;

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

    /// `y[m − rows.start] = (y[m − rows.start] if accumulate) + sx·scale[m]·Σ_k (x[k] − zx)·w[m][k]`
    /// for `m` in `rows`, `x` quantized with zero point `zx` (0..=255). Panics if `rows` passes
    /// the weights, `x` holds fewer than [`RowBlocks::x_bytes`], or `scale` / `y` are short.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        x: &[u8],
        zx: i32,
        sx: f32,
        scale: &[f32],
        rows: Range<usize>,
        y: &mut [f32],
        accumulate: bool,
    ) {
        assert!(
            rows.start <= rows.end
                && rows.end <= self.m
                && x.len() >= self.x_bytes()
                && scale.len() >= rows.end
                && y.len() >= rows.len()
                && (0..=255).contains(&zx),
            "row_blocks: operands do not match {} rows of {}",
            self.m,
            self.k
        );
        if rows.is_empty() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if Self::pays() {
            // SAFETY: VNNI (`pays`); the bounds are checked above.
            return unsafe { vnni::run(self, x, zx, sx, scale, rows, y, accumulate) };
        }
        for m in rows.clone() {
            let (b, lane) = (m / BLOCK, m % BLOCK);
            let mut acc = 0i32;
            for g in 0..self.kg {
                let w = self.w[(b * self.kg + g) * BLOCK + lane].to_le_bytes();
                for (d, &wv) in w.iter().enumerate() {
                    acc += x[4 * g + d] as i32 * wv as i8 as i32;
                }
            }
            let acc = acc.wrapping_sub(zx.wrapping_mul(self.sums[m]));
            store(&mut y[m - rows.start], acc, sx * scale[m], accumulate);
        }
    }
}

/// `gemv`'s epilogue for one row.
#[inline(always)]
fn store(y: &mut f32, acc: i32, mult: f32, accumulate: bool) {
    let v = acc as f32 * mult;
    if accumulate {
        *y += v;
    } else {
        *y = v;
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{store, RowBlocks, BLOCK};

    /// The sums of blocks `b0..b0 + N`, minus `zx·Σw`, in registers.
    ///
    /// # Safety
    /// AVX-512F/VNNI; blocks `b0..b0 + N` exist and `x` holds `4·kg` bytes.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn tile<const N: usize>(rb: &RowBlocks, x: &[u8], zx: i32, b0: usize) -> [__m512i; N] {
        let kg = rb.kg;
        let w = rb.w.as_ptr().add(b0 * kg * BLOCK);
        let xp = x.as_ptr() as *const i32;
        let mut acc = [_mm512_setzero_si512(); N];
        for g in 0..kg {
            // SAFETY: group g of x and of each block lies within the checked lengths.
            let xv = _mm512_set1_epi32(xp.add(g).read_unaligned());
            for (j, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_loadu_si512(w.add((j * kg + g) * BLOCK) as *const _);
                *a = _mm512_dpbusd_epi32(*a, xv, wv);
            }
        }
        let z = _mm512_set1_epi32(zx);
        for (j, a) in acc.iter_mut().enumerate() {
            let s = _mm512_loadu_si512(rb.sums.as_ptr().add((b0 + j) * BLOCK) as *const _);
            *a = _mm512_sub_epi32(*a, _mm512_mullo_epi32(z, s));
        }
        acc
    }

    /// Blocks `b0..b0 + N`, each wholly within `rows`, into `y`.
    ///
    /// # Safety
    /// As [`tile`]; the blocks' rows lie in `rows`, within `scale` and (less `rows.start`) `y`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn whole<const N: usize>(
        rb: &RowBlocks,
        x: &[u8],
        zx: i32,
        sx: f32,
        scale: &[f32],
        row0: usize,
        y: &mut [f32],
        b0: usize,
        accumulate: bool,
    ) {
        let acc = tile::<N>(rb, x, zx, b0);
        let sxv = _mm512_set1_ps(sx);
        for (j, a) in acc.iter().enumerate() {
            let m = (b0 + j) * BLOCK;
            let mult = _mm512_mul_ps(sxv, _mm512_loadu_ps(scale.as_ptr().add(m)));
            let mut v = _mm512_mul_ps(_mm512_cvtepi32_ps(*a), mult);
            let out = y.as_mut_ptr().add(m - row0);
            if accumulate {
                v = _mm512_add_ps(_mm512_loadu_ps(out), v);
            }
            _mm512_storeu_ps(out, v);
        }
    }

    /// [`RowBlocks::run`] on AVX-512 VNNI: whole blocks four at a time, then one at a time;
    /// a block cut by `rows` through an array, its rows stored one by one.
    ///
    /// # Safety
    /// AVX-512F/VNNI; the operands checked by [`RowBlocks::run`].
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn run(
        rb: &RowBlocks,
        x: &[u8],
        zx: i32,
        sx: f32,
        scale: &[f32],
        rows: Range<usize>,
        y: &mut [f32],
        accumulate: bool,
    ) {
        // Whole blocks: from the first block starting in `rows` to the last ending in it.
        let first = rows.start.div_ceil(BLOCK);
        let end = (rows.end / BLOCK).max(first);
        let mut b = first;
        while b + 4 <= end {
            whole::<4>(rb, x, zx, sx, scale, rows.start, y, b, accumulate);
            b += 4;
        }
        while b < end {
            whole::<1>(rb, x, zx, sx, scale, rows.start, y, b, accumulate);
            b += 1;
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
            let mut acc = [0i32; BLOCK];
            _mm512_storeu_si512(acc.as_mut_ptr() as *mut _, tile::<1>(rb, x, zx, b)[0]);
            for m in lo..hi {
                store(
                    &mut y[m - rows.start],
                    acc[m % BLOCK],
                    sx * scale[m],
                    accumulate,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row range of a few shapes (a block cut at either end, within one block, whole
    /// blocks, k not a multiple of 4) against the definition, bit for bit with `gemv`'s
    /// expression.
    #[test]
    fn row_blocks_match_the_definition() {
        for (m, k) in [(37, 131), (512, 128), (16, 4), (5, 1), (80, 0)] {
            let w: Vec<i8> = (0..m * k)
                .map(|i| ((i * 37 % 256) as i32 - 128) as i8)
                .collect();
            let rb = RowBlocks::new(&w, m, k);
            let x: Vec<u8> = (0..rb.x_bytes()).map(|i| (i * 91 % 256) as u8).collect();
            let zx = 131;
            let scale: Vec<f32> = (0..m).map(|i| 0.001 * (i + 1) as f32).collect();
            let ranges = [
                0..m,
                3.min(m)..m,
                0..m.saturating_sub(5),
                17.min(m)..33.min(m),
            ];
            for rows in ranges {
                for accumulate in [false, true] {
                    let mut y: Vec<f32> = (0..rows.len()).map(|i| i as f32 * 0.25).collect();
                    let mut want = y.clone();
                    rb.run(&x, zx, 0.5, &scale, rows.clone(), &mut y, accumulate);
                    for (o, r) in want.iter_mut().zip(rows.clone()) {
                        let acc: i32 = (0..k)
                            .map(|c| (x[c] as i32 - zx) * w[r * k + c] as i32)
                            .sum();
                        store(o, acc, 0.5 * scale[r], accumulate);
                    }
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&y), bits(&want), "{m}×{k} rows {rows:?}");
                }
            }
        }
    }
}

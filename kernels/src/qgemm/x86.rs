//! x86-64 integer micro-kernels: AVX-512 VNNI (`vpdpbusd` for u8 × i8, `vpdpwssd` for i16
//! pairs) and AVX2 (`vpmaddwd` on i16 pairs, which cannot saturate, unlike `vpmaddubsw`).

use std::arch::x86_64::*;

use super::pack::pack_panel;
use super::{
    drive, quantize_byte, Format, Job, Out, OutKind, MAX_BLOCK_PANELS, MR, NARROW_MAX, NR,
};

/// # Safety
/// The CPU must support AVX-512F/BW/VNNI; `job` checked by `QWeights::run`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub(crate) unsafe fn drive_avx512vnni(job: &Job, out: &mut Out, scratch: &mut [u8]) {
    let one_column = job.cols - job.first == 1;
    match (job.wts.format, &mut *out, job.epi.kind) {
        (Format::U8, _, _) if one_column => return gemv_vnni_u8(job, out, scratch),
        (Format::U8, Out::Bytes(o), OutKind::Int { zp, lo, hi }) if job.col_stride == 1 => {
            return drive_vnni_u8_bytes(job, o.as_mut_ptr(), o.len(), scratch, zp, lo, hi)
        }
        (Format::U8, Out::F32(o), OutKind::F32 { lo, hi })
            if job.col_stride == 1 || job.row_stride == 1 =>
        {
            return drive_vnni_u8_f32(job, o.as_mut_ptr(), o.len(), scratch, lo, hi);
        }
        _ => {}
    }
    match job.wts.format {
        Format::U8 => drive(job, out, scratch, micro_vnni_u8),
        _ => drive(job, out, scratch, micro_vnni_i16),
    }
}

/// [`drive`] for u8 × i8 products written as bytes along contiguous rows (a quantized
/// convolution's usual output): the accumulators stay in registers through the epilogue, which
/// converts, scales, clamps, rounds and narrows 16 columns at a time and stores them with one
/// (masked) 16-byte store. The generic path stores each tile's accumulators to memory and
/// writes each row through a stack copy, which cost more than the products themselves for the
/// short depths of pointwise layers (MobileNetV2's 16 → 96 expansion: see BENCHMARKS.md).
/// Up to [`QWeights::block_panels`] panels are packed at a time and each tile of rows runs
/// over all of them, so a row's epilogue constants are loaded once per block rather than once
/// per panel. The arithmetic is `drive`'s, operation for operation, so the bytes are the same.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VNNI; `job` checked by `QWeights::run` (or
/// `run_cols_shared`); `o` is valid for writes of `o_len` bytes, of which this call writes
/// only the job's elements, and nothing else accesses those while it runs.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub(crate) unsafe fn drive_vnni_u8_bytes(
    job: &Job,
    o: *mut u8,
    o_len: usize,
    scratch: &mut [u8],
    zp: f32,
    lo: f32,
    hi: f32,
) {
    // One panel per block (deep products): the constants are loaded where they are used, as
    // kept in arrays they would only cross the stack.
    match (job.wts.shift.is_empty(), job.wts.block_panels() > 1) {
        (true, true) => vnni_u8_bytes::<false, true>(job, o, o_len, scratch, zp, lo, hi),
        (true, false) => vnni_u8_bytes::<false, false>(job, o, o_len, scratch, zp, lo, hi),
        (false, true) => vnni_u8_bytes::<true, true>(job, o, o_len, scratch, zp, lo, hi),
        (false, false) => vnni_u8_bytes::<true, false>(job, o, o_len, scratch, zp, lo, hi),
    }
}

/// [`drive_vnni_u8_bytes`] with (`SHIFTED`) or without rows whose weights were shifted into
/// i8 (see `QWeights::new`), the tile's epilogue constants loaded once per block (`HOIST`) or
/// where they are used.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn vnni_u8_bytes<const SHIFTED: bool, const HOIST: bool>(
    job: &Job,
    o: *mut u8,
    o_len: usize,
    scratch: &mut [u8],
    zp: f32,
    lo: f32,
    hi: f32,
) {
    let w = job.wts;
    let per = w.kg * NR * 4;
    let block = w.block_panels();
    let zx = job.x.zero_point;
    let pad = (zx as u8) ^ w.xor;
    let (lov, hiv, zpv) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi), _mm512_set1_ps(zp));
    // i8 outputs narrow with signed saturation, u8 ones with unsigned: exact either way, the
    // values being clamped to lo..=hi already (other bounds keep the low byte row by row).
    let signed = lo < 0.0;
    let packs = (lo >= 0.0 && hi <= 255.0) || (lo >= -128.0 && hi <= 127.0);
    // A lower bound at the packs' own floor (no activation clamp: every layer of a network
    // without ReLU outputs, and ReLU ones calibrated to start at zero) needs no `max`: what
    // is below it, -inf and NaN included, converts to a smaller integer or to i32::MIN, which
    // the saturating packs take to that floor, as the clamp would. The `min` stays (a value
    // past i32's range would convert to i32::MIN too), with the bound first so a NaN passes.
    let floored = packs && lo == if signed { -128.0 } else { 0.0 };
    // Dword 4l + r (lane l, row r after the packs) to lane r, position l.
    let regroup = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let mut p0 = job.first;
    while p0 < job.cols {
        let panels = (job.cols - p0).div_ceil(NR).min(block);
        // Σ_k x per column of each panel, for rows whose weights were shifted.
        let mut colsum = [_mm512_setzero_si512(); MAX_BLOCK_PANELS];
        for (b, cs) in colsum.iter_mut().enumerate().take(panels) {
            let q0 = p0 + b * NR;
            let panel = &mut scratch[b * per..(b + 1) * per];
            pack_panel(
                job.src,
                w.format,
                w.k,
                w.kg,
                q0,
                NR.min(job.cols - q0),
                job.xor,
                zx,
                pad,
                panel,
            );
            if SHIFTED {
                let ones = _mm512_set1_epi8(1);
                for g in 0..w.kg {
                    // SAFETY: the panel holds `kg` groups of 64 bytes.
                    let x = _mm512_loadu_si512(panel.as_ptr().add(g * 64) as *const _);
                    *cs = _mm512_dpbusd_epi32(*cs, x, ones);
                }
            }
        }
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let rows = MR.min(job.rows.end - m0);
            // The tile's epilogue constants, once for the whole block of panels.
            let mut corr = [_mm512_setzero_si512(); MR];
            let mut shift = [_mm512_setzero_si512(); MR];
            let mut mult = [_mm512_setzero_ps(); MR];
            let mut add = [_mm512_setzero_ps(); MR];
            let constants = |m: usize| {
                (
                    _mm512_set1_epi32(w.correction(m, zx)),
                    _mm512_set1_epi32(if SHIFTED { w.shift[m] } else { 0 }),
                    _mm512_set1_ps(job.epi.mult[m] * job.x.scale),
                    _mm512_set1_ps(job.epi.add[m]),
                )
            };
            if HOIST {
                for i in 0..rows {
                    (corr[i], shift[i], mult[i], add[i]) = constants(m0 + i);
                }
            }
            // Row i's first byte of the block; the block's columns span `span` bytes.
            let span = (panels - 1) * NR + NR.min(job.cols - p0 - (panels - 1) * NR);
            let mut row_at = [0usize; MR];
            for (i, at) in row_at.iter_mut().enumerate().take(rows) {
                *at = (m0 + i - job.rows.start) * job.row_stride + (p0 - job.first);
                assert!(*at + span <= o_len, "qgemm: output too small");
            }
            for (b, &colsum) in colsum.iter().enumerate().take(panels) {
                let q0 = p0 + b * NR;
                let np = NR.min(job.cols - q0);
                // SAFETY: the block holds `panels` panels of `kg` groups of 64 bytes; each row
                // `kg` i32 groups.
                let c = vnni_tile::<false>(
                    w.kg,
                    w.w.as_ptr().add(m0 * w.kg),
                    w.kg,
                    rows,
                    scratch.as_ptr().add(b * per),
                    // (Zeros passed in, and the correction added in each arm below: this
                    // large function's register allocation is fragile, and this form compiled
                    // to 2–10 % faster short-depth tiles than the plain ones tried; compare
                    // with `scripts/bench/ab-nodes.sh` before reshaping it.)
                    [_mm512_setzero_si512(); MR],
                );
                // Row i's values as i32 before the clamp's lower bound where `floor` says so
                // (see `floored`), else clamped to lo..=hi (so within a byte's range).
                let quantized = |i: usize, floor: bool| {
                    let (mut v, shift, mult, add) = if HOIST {
                        (_mm512_add_epi32(c[i], corr[i]), shift[i], mult[i], add[i])
                    } else {
                        let (corr, shift, mult, add) = constants(m0 + i);
                        (_mm512_add_epi32(c[i], corr), shift, mult, add)
                    };
                    if SHIFTED {
                        v = _mm512_add_epi32(v, _mm512_mullo_epi32(shift, colsum));
                    }
                    let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), mult), add);
                    // `quantize_byte(y + zp, lo, hi)`: clamp (NaN gives `lo`), round half to
                    // even (the default rounding mode); the caller keeps the low byte.
                    let y = _mm512_add_ps(y, zpv);
                    let y = if floor {
                        _mm512_min_ps(hiv, y)
                    } else {
                        _mm512_min_ps(_mm512_max_ps(y, lov), hiv)
                    };
                    _mm512_cvtps_epi32(y)
                };
                // (A 512-bit masked store of the narrowed bytes: the 128-bit form needs
                // AVX-512VL.)
                let store: __mmask64 = (1u64 << np) - 1;
                let col = b * NR;
                let mut i = 0;
                // Four rows at a time: narrowed together by saturating packs (exact, the
                // values being in range), regrouped so each 128-bit lane holds one row's 16
                // bytes.
                while packs && i + 4 <= rows {
                    let (v0, v1, v2, v3) = (
                        quantized(i, floored),
                        quantized(i + 1, floored),
                        quantized(i + 2, floored),
                        quantized(i + 3, floored),
                    );
                    let (p01, p23) = (_mm512_packs_epi32(v0, v1), _mm512_packs_epi32(v2, v3));
                    // Lane l: pixels 4l..4l+4 of rows i..i+4, four bytes each.
                    let bytes = if signed {
                        _mm512_packs_epi16(p01, p23)
                    } else {
                        _mm512_packus_epi16(p01, p23)
                    };
                    let bytes = _mm512_permutexvar_epi32(regroup, bytes);
                    for r in 0..4 {
                        // SAFETY: bytes row_at + col .. + np of `o`, inside its `o_len`
                        // (checked for the block's last column above), the job's own. Lane r
                        // is stored from a base 16·r bytes before with only lane r's first
                        // `np` bytes enabled, so nothing outside them is touched (masked-off
                        // bytes are never accessed).
                        _mm512_mask_storeu_epi8(
                            (o.add(row_at[i + r] + col) as *mut i8).wrapping_sub(16 * r),
                            store << (16 * r),
                            bytes,
                        );
                    }
                    i += 4;
                }
                for (i, &at) in row_at.iter().enumerate().take(rows).skip(i) {
                    let q = _mm512_cvtepi32_epi8(quantized(i, false));
                    // SAFETY: as above.
                    _mm512_mask_storeu_epi8(
                        o.add(at + col) as *mut i8,
                        store,
                        _mm512_castsi128_si512(q),
                    );
                }
            }
            m0 += MR;
        }
        p0 += panels * NR;
    }
}

/// [`drive`] for u8 × i8 products written as f32 along contiguous rows (a dynamically
/// quantized convolution's output, or a QConv's read by a float op), with (`SHIFTED`) or
/// without rows whose weights were shifted into i8: as [`drive_vnni_u8_bytes`], the
/// accumulators stay in registers through the epilogue (`clamp(acc·mult + add, lo, hi)`, added
/// to the output where the job accumulates), 16 columns per masked store, and up to
/// [`QWeights::block_panels`] panels are packed at a time with each tile of rows run over all
/// of them. `drive`'s arithmetic, operation for operation, so the floats are the same.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VNNI; `job` checked by `QWeights::run` (or `run_part`,
/// `run_cols_shared_f32`); `o` is valid for writes of `o_len` floats, of which this call
/// writes only the job's elements, and nothing else accesses those while it runs.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub(crate) unsafe fn drive_vnni_u8_f32(
    job: &Job,
    o: *mut f32,
    o_len: usize,
    scratch: &mut [u8],
    lo: f32,
    hi: f32,
) {
    match (job.wts.shift.is_empty(), job.col_stride == 1) {
        (true, true) => vnni_u8_f32::<false, false>(job, o, o_len, scratch, lo, hi),
        (false, true) => vnni_u8_f32::<true, false>(job, o, o_len, scratch, lo, hi),
        (true, false) => vnni_u8_f32::<false, true>(job, o, o_len, scratch, lo, hi),
        (false, false) => vnni_u8_f32::<true, true>(job, o, o_len, scratch, lo, hi),
    }
}

/// [`drive_vnni_u8_f32`] with (`SHIFTED`) or without rows whose weights were shifted into i8,
/// written along rows (`col_stride` 1: a convolution's output) or, `TRANSPOSED`, along columns
/// (`row_stride` 1: a MatMul's `[rows of X][N]`, the tile's rows of each column contiguous).
/// Written transposed, a tile goes through a stack copy so each column's rows are stored
/// together: stored row by row, every value of a tile row lands on another line of Y (4 KiB
/// apart for N = 1024), which took a quarter of a 32 × 1024 product's time.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn vnni_u8_f32<const SHIFTED: bool, const TRANSPOSED: bool>(
    job: &Job,
    o: *mut f32,
    o_len: usize,
    scratch: &mut [u8],
    lo: f32,
    hi: f32,
) {
    let w = job.wts;
    let per = w.kg * NR * 4;
    let block = w.block_panels();
    let zx = job.x.zero_point;
    let pad = (zx as u8) ^ w.xor;
    let (lov, hiv) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
    let mut p0 = job.first;
    while p0 < job.cols {
        let panels = (job.cols - p0).div_ceil(NR).min(block);
        // Σ_k x per column of each panel, for rows whose weights were shifted.
        let mut colsum = [_mm512_setzero_si512(); MAX_BLOCK_PANELS];
        for (b, cs) in colsum.iter_mut().enumerate().take(panels) {
            let q0 = p0 + b * NR;
            let panel = &mut scratch[b * per..(b + 1) * per];
            pack_panel(
                job.src,
                w.format,
                w.k,
                w.kg,
                q0,
                NR.min(job.cols - q0),
                job.xor,
                zx,
                pad,
                panel,
            );
            if SHIFTED {
                let ones = _mm512_set1_epi8(1);
                for g in 0..w.kg {
                    // SAFETY: the panel holds `kg` groups of 64 bytes.
                    let x = _mm512_loadu_si512(panel.as_ptr().add(g * 64) as *const _);
                    *cs = _mm512_dpbusd_epi32(*cs, x, ones);
                }
            }
        }
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let rows = MR.min(job.rows.end - m0);
            // The tile's epilogue constants, once for the whole block of panels.
            let mut corr = [_mm512_setzero_si512(); MR];
            let mut shift = [_mm512_setzero_si512(); MR];
            let mut mult = [_mm512_setzero_ps(); MR];
            let mut add = [_mm512_setzero_ps(); MR];
            for i in 0..rows {
                let m = m0 + i;
                corr[i] = _mm512_set1_epi32(w.correction(m, zx));
                shift[i] = _mm512_set1_epi32(if SHIFTED { w.shift[m] } else { 0 });
                mult[i] = _mm512_set1_ps(job.epi.mult[m] * job.x.scale);
                add[i] = _mm512_set1_ps(job.epi.add[m]);
            }
            for (b, &colsum) in colsum.iter().enumerate().take(panels) {
                let q0 = p0 + b * NR;
                let np = NR.min(job.cols - q0);
                // SAFETY: the block holds `panels` panels of `kg` groups of 64 bytes; each row
                // `kg` i32 groups.
                let c = vnni_tile::<false>(
                    w.kg,
                    w.w.as_ptr().add(m0 * w.kg),
                    w.kg,
                    rows,
                    scratch.as_ptr().add(b * per),
                    [_mm512_setzero_si512(); MR],
                );
                let store: __mmask16 = ((1u32 << np) - 1) as __mmask16;
                let mut t = [[0f32; NR]; MR];
                for i in 0..rows {
                    let mut v = _mm512_add_epi32(c[i], corr[i]);
                    if SHIFTED {
                        v = _mm512_add_epi32(v, _mm512_mullo_epi32(shift[i], colsum));
                    }
                    let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), mult[i]), add[i]);
                    // `clamp(y, lo, hi)`: `max` gives its second operand, `lo`, for a NaN.
                    let y = _mm512_min_ps(_mm512_max_ps(y, lov), hiv);
                    if TRANSPOSED {
                        _mm512_storeu_ps(t[i].as_mut_ptr(), y);
                        continue;
                    }
                    let at = (m0 + i - job.rows.start) * job.row_stride + (q0 - job.first);
                    assert!(at + np <= o_len, "qgemm: output too small");
                    // SAFETY: elements at..at + np of `o` (checked just above), the job's own;
                    // masked-off lanes are never accessed.
                    let dst = o.add(at);
                    let y = if job.x.accumulate {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(store, dst), y)
                    } else {
                        y
                    };
                    _mm512_mask_storeu_ps(dst, store, y);
                }
                if TRANSPOSED {
                    // Element (m, p) at (m − rows.start) + (p − first)·col_stride.
                    let (cs, base) = (job.col_stride, m0 - job.rows.start);
                    let at = |p: usize| base + (q0 + p - job.first) * cs;
                    assert!(at(np - 1) + rows <= o_len, "qgemm: output too small");
                    for p in 0..np {
                        // SAFETY: elements at(p)..at(p) + rows of `o` (the last checked just
                        // above, the others before it), the job's own.
                        let dst = o.add(at(p));
                        for (i, row) in t.iter().enumerate().take(rows) {
                            if job.x.accumulate {
                                *dst.add(i) += row[p];
                            } else {
                                *dst.add(i) = row[p];
                            }
                        }
                    }
                }
            }
            m0 += MR;
        }
        p0 += panels * NR;
    }
}

/// Whether `n` columns (fewer than a panel) cost less as [`narrow_u8_bytes`]'s
/// matrix-vector products than as one panel of tiles over depth groups `kg`: a panel costs
/// about one `vpdpbusd` per row and group; the products `n / 16` of that, plus a reduction and
/// a scalar epilogue per element (~36 instructions' worth per row for four rows), with a 2×
/// margin; and their bytes fit [`NARROW_BYTES`].
pub(crate) fn narrow_pays(n: usize, kg: usize) -> bool {
    (1..=NARROW_MAX).contains(&n) && n * (kg + 144) < 8 * kg && n * 4 * kg <= NARROW_BYTES
}

/// Bytes of [`narrow_u8_bytes`]'s columns, on its stack (k ≤ 2048 for four columns).
const NARROW_BYTES: usize = 8 << 10;

/// Columns `q0..job.cols` (at most [`NARROW_MAX`]) of [`vnni_u8_bytes`]'s output as
/// matrix-vector products: the columns are packed as a panel, then laid out one after the
/// other (k bytes each, 4·kg with the pad), and each weight row, already k contiguous bytes,
/// meets them 64 bytes per `vpdpbusd`, four rows at a time. Same integers and the same
/// epilogue arithmetic (scalar, as [`gemv_vnni_u8`]'s), so the same bytes.
///
/// # Safety
/// As [`drive_vnni_u8_bytes`]; `narrow_pays` holds for the columns.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn narrow_u8_bytes(
    job: &Job,
    o: *mut u8,
    o_len: usize,
    q0: usize,
    scratch: &mut [u8],
    zp: f32,
    lo: f32,
    hi: f32,
) {
    const R: usize = 4;
    let w = job.wts;
    let n = job.cols - q0;
    debug_assert!((1..=NARROW_MAX).contains(&n));
    let zx = job.x.zero_point;
    let pad = (zx as u8) ^ w.xor;
    let len = 4 * w.kg;
    let panel = &mut scratch[..w.kg * NR * 4];
    let mut buf = [0u8; NARROW_BYTES];
    let cols = &mut buf[..n * len];
    pack_panel(job.src, w.format, w.k, w.kg, q0, n, job.xor, zx, pad, panel);
    for (g, group) in panel.chunks_exact(NR * 4).enumerate() {
        for j in 0..n {
            cols[j * len + 4 * g..][..4].copy_from_slice(&group[4 * j..4 * j + 4]);
        }
    }
    // Σ_k x of each column, for rows whose weights were shifted (see `QWeights::new`).
    let mut colsum = [0i32; NARROW_MAX];
    let shifted = !w.shift.is_empty();
    if shifted {
        for (j, s) in colsum.iter_mut().enumerate().take(n) {
            *s = cols[j * len..(j + 1) * len]
                .iter()
                .fold(0i32, |a, &b| a.wrapping_add(b as i32));
        }
    }
    let full = len / 64;
    let tail: __mmask64 = if len.is_multiple_of(64) {
        0
    } else {
        (1u64 << (len % 64)) - 1
    };
    let xs = cols.as_ptr();
    let mut m0 = job.rows.start;
    while m0 < job.rows.end {
        let rows = R.min(job.rows.end - m0);
        // Rows past `rows` repeat the last one; their results are dropped.
        let r: [*const u8; R] =
            std::array::from_fn(|i| w.w.as_ptr().add((m0 + i.min(rows - 1)) * w.kg) as *const u8);
        let mut acc = [[_mm512_setzero_si512(); NARROW_MAX]; R];
        for c in 0..full + (tail != 0) as usize {
            let mask = if c < full { !0 } else { tail };
            // SAFETY: chunk c lies within each row's len bytes and each column's (the last
            // one masked to what is left).
            let wv: [__m512i; R] = std::array::from_fn(|i| {
                _mm512_maskz_loadu_epi8(mask, r[i].add(c * 64) as *const i8)
            });
            for j in 0..n {
                let x = _mm512_maskz_loadu_epi8(mask, xs.add(j * len + c * 64) as *const i8);
                for (row, &wv) in acc.iter_mut().zip(&wv) {
                    row[j] = _mm512_dpbusd_epi32(row[j], x, wv);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate().take(rows) {
            let m = m0 + i;
            let corr = w.correction(m, zx);
            let (mult, add) = (job.epi.mult[m] * job.x.scale, job.epi.add[m]);
            let at = (m - job.rows.start) * job.row_stride + (q0 - job.first);
            assert!(at + n <= o_len, "qgemm: output too small");
            for (j, &a) in acc.iter().enumerate().take(n) {
                let mut v = _mm512_reduce_add_epi32(a).wrapping_add(corr);
                if shifted {
                    v = v.wrapping_add(w.shift[m].wrapping_mul(colsum[j]));
                }
                // SAFETY: inside `o_len` (checked above), the job's own columns.
                *o.add(at + j) = quantize_byte(v as f32 * mult + add + zp, lo, hi);
            }
        }
        m0 += R;
    }
}

/// One column (a matrix-vector product: a batch-1 Gemm, a 1×1 convolution of a 1×1 image), to
/// f32 or bytes: each weight row is already k contiguous bytes, so the row's dot product runs
/// 64 bytes per `vpdpbusd` instead of one live column in a 16-column panel. Same integers,
/// same epilogue arithmetic as [`drive`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn gemv_vnni_u8(job: &Job, out: &mut Out, scratch: &mut [u8]) {
    let w = job.wts;
    let panel = &mut scratch[..w.kg * NR * 4];
    let zx = job.x.zero_point;
    let pad = (zx as u8) ^ w.xor;
    pack_panel(
        job.src, w.format, w.k, w.kg, job.first, 1, job.xor, zx, pad, panel,
    );
    // Column 0 of each group's 64 bytes, compacted to the front: k bytes (4·kg with the pad).
    for g in 0..w.kg {
        panel.copy_within(g * 64..g * 64 + 4, 4 * g);
    }
    let n = 4 * w.kg;
    // Σ_k x of the column, for rows whose weights were shifted (see `QWeights::new`).
    let colsum: i32 = if w.shift.is_empty() {
        0
    } else {
        panel[..n]
            .iter()
            .fold(0i32, |a, &b| a.wrapping_add(b as i32))
    };
    let xs = panel.as_ptr();
    let full = n / 64;
    let tail: __mmask64 = if n.is_multiple_of(64) {
        0
    } else {
        (1u64 << (n % 64)) - 1
    };
    for m in job.rows.clone() {
        let row = w.w.as_ptr().add(m * w.kg) as *const u8;
        let (mut a0, mut a1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let mut c = 0;
        while c + 1 < full {
            // SAFETY: chunks c and c + 1 lie within the row's n bytes and the panel's first n.
            a0 = _mm512_dpbusd_epi32(
                a0,
                _mm512_loadu_si512(xs.add(c * 64) as *const _),
                _mm512_loadu_si512(row.add(c * 64) as *const _),
            );
            a1 = _mm512_dpbusd_epi32(
                a1,
                _mm512_loadu_si512(xs.add(c * 64 + 64) as *const _),
                _mm512_loadu_si512(row.add(c * 64 + 64) as *const _),
            );
            c += 2;
        }
        if c < full {
            a0 = _mm512_dpbusd_epi32(
                a0,
                _mm512_loadu_si512(xs.add(c * 64) as *const _),
                _mm512_loadu_si512(row.add(c * 64) as *const _),
            );
        }
        if tail != 0 {
            // SAFETY: masked loads touch only the n % 64 bytes left in the row and the panel.
            a1 = _mm512_dpbusd_epi32(
                a1,
                _mm512_maskz_loadu_epi8(tail, xs.add(full * 64) as *const i8),
                _mm512_maskz_loadu_epi8(tail, row.add(full * 64) as *const i8),
            );
        }
        let acc = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
        // `drive`'s epilogue for one element.
        let shift = w.shift.get(m).map_or(0, |s| s.wrapping_mul(colsum));
        let corr = w.correction(m, zx).wrapping_add(shift);
        let (mult, add) = (job.epi.mult[m] * job.x.scale, job.epi.add[m]);
        let y = acc.wrapping_add(corr) as f32 * mult + add;
        let at = (m - job.rows.start) * job.row_stride;
        match (job.epi.kind, &mut *out) {
            (OutKind::Int { zp, lo, hi }, Out::Bytes(o)) => o[at] = quantize_byte(y + zp, lo, hi),
            (OutKind::F32 { lo, hi }, Out::F32(o)) if job.x.accumulate => {
                o[at] += super::clamp(y, lo, hi)
            }
            (OutKind::F32 { lo, hi }, Out::F32(o)) => o[at] = super::clamp(y, lo, hi),
            _ => panic!("qgemm: output buffer does not match the epilogue's kind"),
        }
    }
}

/// # Safety
/// The CPU must support AVX2; `job` checked by `QWeights::run`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn drive_avx2(job: &Job, out: &mut Out, scratch: &mut [u8]) {
    debug_assert_eq!(job.wts.format, Format::I16);
    drive(job, out, scratch, micro_avx2_i16)
}

/// One `MR × NR` tile's accumulators, in registers, started at `init`: `vpdpwssd` over i16
/// pairs when `I16`, else `vpdpbusd` over u8 × i8 quads. Rows past `rows` recompute the last
/// valid row (their results are for the caller to ignore).
///
/// # Safety
/// The CPU runs AVX-512F/BW/VNNI; the panel holds `kg` groups of 64 bytes and each of the
/// `rows` weight rows (`ldw` apart) `kg` i32 groups.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn vnni_tile<const I16: bool>(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    init: [__m512i; MR],
) -> [__m512i; MR] {
    let r: [*const i32; MR] = std::array::from_fn(|i| w.add(i.min(rows - 1) * ldw));
    let mut c = init;
    for g in 0..kg {
        // SAFETY: as the caller guarantees.
        let x = _mm512_loadu_si512(panel.add(g * 64) as *const _);
        for i in 0..MR {
            let wv = _mm512_set1_epi32(*r[i].add(g));
            c[i] = if I16 {
                _mm512_dpwssd_epi32(c[i], x, wv)
            } else {
                _mm512_dpbusd_epi32(c[i], x, wv)
            };
        }
    }
    c
}

macro_rules! vnni_micro {
    ($name:ident, $i16:literal) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn $name(
            kg: usize,
            w: *const i32,
            ldw: usize,
            rows: usize,
            panel: *const u8,
            acc: &mut [[i32; NR]; MR],
        ) {
            let c = vnni_tile::<$i16>(kg, w, ldw, rows, panel, [_mm512_setzero_si512(); MR]);
            for i in 0..MR {
                _mm512_storeu_si512(acc[i].as_mut_ptr() as *mut _, c[i]);
            }
        }
    };
}

vnni_micro!(micro_vnni_u8, false);
vnni_micro!(micro_vnni_i16, true);

#[target_feature(enable = "avx2")]
unsafe fn micro_avx2_i16(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
) {
    // Two passes of four rows: 4 rows × 2 registers of 8 columns stay in registers.
    for half in 0..2 {
        let r: [*const i32; 4] = std::array::from_fn(|i| w.add((half * 4 + i).min(rows - 1) * ldw));
        let mut lo = [_mm256_setzero_si256(); 4];
        let mut hi = [_mm256_setzero_si256(); 4];
        for g in 0..kg {
            // SAFETY: as in the VNNI kernels.
            let x0 = _mm256_loadu_si256(panel.add(g * 64) as *const __m256i);
            let x1 = _mm256_loadu_si256(panel.add(g * 64 + 32) as *const __m256i);
            for i in 0..4 {
                let wv = _mm256_set1_epi32(*r[i].add(g));
                lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(x0, wv));
                hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(x1, wv));
            }
        }
        for i in 0..4 {
            let a = acc[half * 4 + i].as_mut_ptr();
            _mm256_storeu_si256(a as *mut __m256i, lo[i]);
            _mm256_storeu_si256(a.add(8) as *mut __m256i, hi[i]);
        }
        if rows <= 4 {
            break;
        }
    }
}

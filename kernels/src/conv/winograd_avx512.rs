//! The Winograd transforms for groups of 16 tiles on AVX-512 (`L` = 16), written with the
//! intrinsics so that every value stays a register or one stack slot: the generic lane loops
//! of the other widths compile to element-wise stack traffic, and `vgatherdps` takes about 25
//! cycles for 16 floats on Zen 4.
//!
//! - In: each window row of the 16 tiles is read by masked loads (tile i in the low half of a
//!   register, tile i + 8 in the high half), transposed within the halves, transformed along
//!   the row (`·B`), and after all rows along the columns (`Bᵀ·`), each result stored as one
//!   vector into its position's panel.
//! - Out: the `(T+2)²` products of one output channel are loaded as vectors, transformed
//!   (`Aᵀ·M·A`), and the `T` output rows interleaved into pixel order (lane i's pixels at
//!   `T·i .. T·i + T`); [`put`] writes runs of them with masked stores.

use std::arch::x86_64::*;

/// `Bᵀ·x` for one column of `T + 2` vectors (the first `T + 2` entries used).
#[inline(always)]
unsafe fn bt<const T: usize>(x: [__m512; 6]) -> [__m512; 6] {
    // SAFETY: the callers run with AVX-512F.
    unsafe {
        if T == 2 {
            let [x0, x1, x2, x3, _, _] = x;
            let z = _mm512_setzero_ps();
            [
                _mm512_sub_ps(x0, x2),
                _mm512_add_ps(x1, x2),
                _mm512_sub_ps(x2, x1),
                _mm512_sub_ps(x1, x3),
                z,
                z,
            ]
        } else {
            let [x0, x1, x2, x3, x4, x5] = x;
            let (four, five, two) = (
                _mm512_set1_ps(4.0),
                _mm512_set1_ps(5.0),
                _mm512_set1_ps(2.0),
            );
            let (s12, s34) = (_mm512_add_ps(x1, x2), _mm512_add_ps(x3, x4));
            let (d12, d43) = (_mm512_sub_ps(x1, x2), _mm512_sub_ps(x4, x3));
            let (w, e) = (_mm512_sub_ps(x4, x2), _mm512_sub_ps(x3, x1));
            [
                _mm512_fmadd_ps(four, x0, _mm512_fnmadd_ps(five, x2, x4)),
                _mm512_fnmadd_ps(four, s12, s34),
                _mm512_fmadd_ps(four, d12, d43),
                _mm512_fmadd_ps(two, e, w),
                _mm512_fnmadd_ps(two, e, w),
                _mm512_fmadd_ps(four, x1, _mm512_fnmadd_ps(five, x3, x5)),
            ]
        }
    }
}

/// `Aᵀ·m` for one column of `T + 2` vectors (the first `T` entries of the result used).
#[inline(always)]
unsafe fn at<const T: usize>(m: [__m512; 6]) -> [__m512; 4] {
    // SAFETY: the callers run with AVX-512F.
    unsafe {
        if T == 2 {
            let [m0, m1, m2, m3, _, _] = m;
            let z = _mm512_setzero_ps();
            [
                _mm512_add_ps(_mm512_add_ps(m0, m1), m2),
                _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3),
                z,
                z,
            ]
        } else {
            let [m0, m1, m2, m3, m4, m5] = m;
            let (s12, d12) = (_mm512_add_ps(m1, m2), _mm512_sub_ps(m1, m2));
            let (s34, d34) = (_mm512_add_ps(m3, m4), _mm512_sub_ps(m3, m4));
            [
                _mm512_add_ps(_mm512_add_ps(m0, s12), s34),
                _mm512_fmadd_ps(_mm512_set1_ps(2.0), d34, d12),
                _mm512_fmadd_ps(_mm512_set1_ps(4.0), s34, s12),
                _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0), d34, d12), m5),
            ]
        }
    }
}

/// Row `a` of the 16 tiles' windows (`p[off[i] + row + b]` where bit b of `mask[i]` is set,
/// else 0, for `b < T + 2`), as `T + 2` vectors over the tiles.
///
/// # Safety
/// AVX-512F; the elements the masks admit are readable (the other lanes are masked off and
/// cannot fault, so the offsets may point outside `p`).
#[inline(always)]
unsafe fn window_row<const T: usize>(
    p: *const f32,
    off: &[isize; 16],
    mask: &[u16; 16],
    row: isize,
) -> [__m512; 6] {
    // SAFETY: the caller's contract.
    unsafe {
        let load = |i: usize| {
            let l = _mm512_maskz_loadu_ps(mask[i], p.wrapping_offset(off[i] + row));
            let h = p.wrapping_offset(off[i + 8] + row - 8);
            _mm512_mask_loadu_ps(l, mask[i + 8] << 8, h)
        };
        let (r0, r1, r2, r3) = (load(0), load(1), load(2), load(3));
        let (r4, r5, r6, r7) = (load(4), load(5), load(6), load(7));
        let (t0, t1) = (_mm512_unpacklo_ps(r0, r1), _mm512_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm512_unpacklo_ps(r2, r3), _mm512_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm512_unpacklo_ps(r4, r5), _mm512_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm512_unpacklo_ps(r6, r7), _mm512_unpackhi_ps(r6, r7));
        // s[k]: column k (128-bit lanes 0 and 2) and k + 4 (lanes 1 and 3) of rows 0–3, i.e.
        // tiles 0–3 and 8–11; u[k] the same for tiles 4–7 and 12–15.
        let s = [
            _mm512_shuffle_ps::<0x44>(t0, t2),
            _mm512_shuffle_ps::<0xEE>(t0, t2),
            _mm512_shuffle_ps::<0x44>(t1, t3),
            _mm512_shuffle_ps::<0xEE>(t1, t3),
        ];
        let u = [
            _mm512_shuffle_ps::<0x44>(t4, t6),
            _mm512_shuffle_ps::<0xEE>(t4, t6),
            _mm512_shuffle_ps::<0x44>(t5, t7),
            _mm512_shuffle_ps::<0xEE>(t5, t7),
        ];
        let first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
        let second = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
        let mut cols = [_mm512_setzero_ps(); 6];
        for (b, c) in cols.iter_mut().enumerate().take(T + 2) {
            let sel = if b < 4 { first } else { second };
            *c = _mm512_permutex2var_ps(s[b % 4], sel, u[b % 4]);
        }
        cols
    }
}

/// `V = Bᵀ·d·B` of one input channel for 16 tiles whose windows start at `p + off[i]` (rows
/// `w` apart), row a's columns outside the plane masked off by `masks[a]` (read as 0);
/// position ξ's 16 values are stored at `v + ξ·vlen`.
///
/// # Safety
/// AVX-512F; every window element the masks admit is readable, and `v + ξ·vlen .. + 16`
/// writable for every position ξ < (T+2)².
#[inline(always)]
pub(super) unsafe fn input16<const T: usize>(
    p: *const f32,
    off: &[isize; 16],
    masks: &[[u16; 16]; 6],
    w: usize,
    v: *mut f32,
    vlen: usize,
) {
    let wn = T + 2;
    // SAFETY: the caller's contract.
    unsafe {
        let mut r = [[_mm512_setzero_ps(); 6]; 6];
        for (a, ra) in r.iter_mut().enumerate().take(wn) {
            *ra = bt::<T>(window_row::<T>(p, off, &masks[a], (a * w) as isize));
        }
        #[allow(clippy::needless_range_loop)] // j indexes the six rows at once
        for j in 0..wn {
            let col = bt::<T>([r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j]]);
            for (k, &ck) in col.iter().enumerate().take(wn) {
                _mm512_storeu_ps(v.add((wn * k + j) * vlen), ck);
            }
        }
    }
}

/// `Aᵀ·M·A + bias` of one output channel for 16 tiles, position ξ's products read from
/// `prod + ξ·plen`, into `o`: `T` output rows, lane i's `T` pixels at `T·i .. T·i + T` of each.
///
/// # Safety
/// AVX-512F; `prod + ξ·plen .. + 16` readable for every ξ < (T+2)².
#[inline(always)]
pub(super) unsafe fn output16<const T: usize>(
    prod: *const f32,
    plen: usize,
    bias: f32,
    o: &mut [[f32; 64]; 4],
) {
    let wn = T + 2;
    // SAFETY: the caller's contract.
    unsafe {
        let z = _mm512_setzero_ps();
        let ld = |k: usize| _mm512_loadu_ps(prod.add(k * plen));
        // Aᵀ·M, column by column: c[b][r] is row r of column b.
        let mut c = [[z; 4]; 6];
        for (b, cb) in c.iter_mut().enumerate().take(wn) {
            let mut m = [z; 6];
            for (a, ma) in m.iter_mut().enumerate().take(wn) {
                *ma = ld(wn * a + b);
            }
            *cb = at::<T>(m);
        }
        let bias = _mm512_set1_ps(bias);
        for (r, orow) in o.iter_mut().enumerate().take(T) {
            let px = at::<T>([c[0][r], c[1][r], c[2][r], c[3][r], c[4][r], c[5][r]]);
            let k = px.map(|v| _mm512_add_ps(v, bias));
            if T == 2 {
                // Per 128-bit lane: tiles 4j, 4j+1 (lo) and 4j+2, 4j+3 (hi), 2 pixels each.
                let (lo, hi) = (
                    _mm512_unpacklo_ps(k[0], k[1]),
                    _mm512_unpackhi_ps(k[0], k[1]),
                );
                let i0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
                let i1 =
                    _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
                _mm512_storeu_ps(orow.as_mut_ptr(), _mm512_permutex2var_ps(lo, i0, hi));
                _mm512_storeu_ps(
                    orow.as_mut_ptr().add(16),
                    _mm512_permutex2var_ps(lo, i1, hi),
                );
            } else {
                let u0 = _mm512_unpacklo_ps(k[0], k[1]);
                let u1 = _mm512_unpackhi_ps(k[0], k[1]);
                let u2 = _mm512_unpacklo_ps(k[2], k[3]);
                let u3 = _mm512_unpackhi_ps(k[2], k[3]);
                // v[q], 128-bit lane j: tile 4j + q's four pixels.
                let v0 = _mm512_shuffle_ps::<0x44>(u0, u2);
                let v1 = _mm512_shuffle_ps::<0xEE>(u0, u2);
                let v2 = _mm512_shuffle_ps::<0x44>(u1, u3);
                let v3 = _mm512_shuffle_ps::<0xEE>(u1, u3);
                // Then a 4×4 transpose of the 128-bit lanes.
                let w0 = _mm512_shuffle_f32x4::<0b10_00_10_00>(v0, v1);
                let w1 = _mm512_shuffle_f32x4::<0b10_00_10_00>(v2, v3);
                let w2 = _mm512_shuffle_f32x4::<0b11_01_11_01>(v0, v1);
                let w3 = _mm512_shuffle_f32x4::<0b11_01_11_01>(v2, v3);
                let out = orow.as_mut_ptr();
                _mm512_storeu_ps(out, _mm512_shuffle_f32x4::<0b10_00_10_00>(w0, w1));
                _mm512_storeu_ps(out.add(16), _mm512_shuffle_f32x4::<0b10_00_10_00>(w2, w3));
                _mm512_storeu_ps(out.add(32), _mm512_shuffle_f32x4::<0b11_01_11_01>(w0, w1));
                _mm512_storeu_ps(out.add(48), _mm512_shuffle_f32x4::<0b11_01_11_01>(w2, w3));
            }
        }
    }
}

/// `y = src (+ res)`, clamped to `clamp` (`max` then `min`: NaN gives the lower bound), by
/// masked 16-float loads and stores (`src` and `res` at least as long as `y`).
///
/// # Safety
/// AVX-512F.
#[inline(always)]
pub(super) unsafe fn put(
    y: &mut [f32],
    src: &[f32],
    res: Option<&[f32]>,
    clamp: Option<(f32, f32)>,
) {
    let n = y.len();
    assert!(src.len() >= n && res.is_none_or(|r| r.len() >= n));
    // SAFETY: AVX-512F (the caller's contract); every access is masked to `..n`.
    unsafe {
        let (lo, hi) = clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        for i in (0..n).step_by(16) {
            let m: __mmask16 = if n - i >= 16 { !0 } else { (1 << (n - i)) - 1 };
            let mut v = _mm512_maskz_loadu_ps(m, src.as_ptr().add(i));
            if let Some(r) = res {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r.as_ptr().add(i)));
            }
            if clamp.is_some() {
                // `vmaxps` returns its second operand where either is NaN.
                v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            }
            _mm512_mask_storeu_ps(y.as_mut_ptr().add(i), m, v);
        }
    }
}

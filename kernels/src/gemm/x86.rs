//! x86-64 micro-kernels (AVX-512F, AVX2 + FMA) and the matrix-vector bodies compiled for them.
//!
//! Each micro-kernel keeps an `MR × NV` grid of vector accumulators in registers, loads `NV`
//! vectors of the B panel per depth step and broadcasts `MR` scalars of the A panel.

use std::arch::x86_64::*;

use super::gemv;
use super::isa::{Fused, Isa};

const AVX512_MR: usize = 8;
const AVX512_NV: usize = 2;
const AVX2_MR: usize = 6;
const AVX2_NV: usize = 2;

pub(crate) static AVX512: Isa = Isa {
    mr: AVX512_MR,
    nr: 16 * AVX512_NV,
    kc: 256,
    mc: AVX512_MR * 16,
    nc: 2048,
    micro: avx512_micro::<AVX512_MR, AVX512_NV, AVX512_MR, AVX512_NV>,
    half: Some(avx512_micro::<AVX512_MR, 1, AVX512_MR, AVX512_NV>),
    short: Some(avx512_micro::<{ AVX512_MR / 2 }, AVX512_NV, AVX512_MR, AVX512_NV>),
    direct: Some(avx512_direct),
    axpy: axpy_avx512,
    strip: strip_avx512,
    dots: dots_avx512,
};

pub(crate) static AVX2: Isa = Isa {
    mr: AVX2_MR,
    nr: 8 * AVX2_NV,
    kc: 256,
    mc: AVX2_MR * 16,
    nc: 2048,
    micro: avx2_micro::<AVX2_MR, AVX2_NV, AVX2_MR, AVX2_NV>,
    half: Some(avx2_micro::<AVX2_MR, 1, AVX2_MR, AVX2_NV>),
    short: Some(avx2_micro::<{ AVX2_MR / 2 }, AVX2_NV, AVX2_MR, AVX2_NV>),
    direct: None,
    axpy: axpy_avx2,
    strip: strip_avx2,
    dots: dots_avx2,
};

/// See [`super::isa::MicroFn`]; the tile is `MR × 16·NV`, the A panel's columns `MA` floats
/// apart and the B panel's rows `16·NB` (`MR < MA`, `NV < NB`: the first rows or columns of
/// wider panels, for edge tiles).
///
/// # Safety
/// The CPU supports AVX-512F; `a` holds `kc·MA` floats, `b` holds `kc·16·NB`, and `c` is valid
/// for the tile with row stride `ldc`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx512_micro<const MR: usize, const NV: usize, const MA: usize, const NB: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
) {
    // SAFETY: the caller's contract, with B's rows `16·NB` floats apart.
    unsafe { avx512_body::<MR, NV, MA>(kc, a, b, 16 * NB, c, ldc, alpha, beta, fx) }
}

/// See [`super::isa::DirectFn`]: the full `MR × 32` tile with B's rows read where they lie,
/// `ldb` floats apart (a row-major right operand, unpacked).
///
/// # Safety
/// The CPU supports AVX-512F; `a` holds `kc·MR` floats; rows `0..kc` of `b`, `ldb` apart, each
/// hold 32 readable floats; `c` is valid for the tile with row stride `ldc`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx512_direct(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
) {
    // SAFETY: the caller's contract.
    unsafe {
        avx512_body::<AVX512_MR, AVX512_NV, AVX512_MR>(kc, a, b, ldb, c, ldc, alpha, beta, fx)
    }
}

/// The AVX-512 micro-kernel's body: B's rows `ldb` floats apart (`16·NB` in a packed panel);
/// the [`Fused`] epilogue applied in registers before the stores.
///
/// # Safety
/// As [`avx512_micro`] with B's rows `ldb` apart.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn avx512_body<const MR: usize, const NV: usize, const MA: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
) {
    // SAFETY: every load stays inside the panels (`p < kc`, `i < MR`, `v < NV`) and every
    // store inside the tile, as the caller guarantees.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(b.add(16 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i));
                for v in 0..NV {
                    row[v] = _mm512_fmadd_ps(ai, bv[v], row[v]);
                }
            }
            a = a.add(MA);
            b = b.add(ldb);
        }
        let betav = _mm512_set1_ps(beta);
        let alphav = _mm512_set1_ps(alpha);
        let clamp = fx.and_then(|f| f.clamp);
        let (lo, hi) = clamp.unwrap_or((0.0, 0.0));
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        for (i, row) in acc.iter().enumerate() {
            // The row's bias, added as `Fused::one` adds it.
            let bias = fx.map_or(0.0, |f| f.bias(i));
            let biasv = _mm512_set1_ps(bias);
            for (v, x) in row.iter().enumerate() {
                let p = c.add(i * ldc + 16 * v);
                let mut r = if alpha == 0.0 {
                    _mm512_mul_ps(betav, *x)
                } else {
                    _mm512_fmadd_ps(alphav, _mm512_loadu_ps(p), _mm512_mul_ps(betav, *x))
                };
                if clamp.is_some() {
                    // `maxps(r, lo)` gives `lo` for a NaN, as `Fused::one` does.
                    r = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, biasv), lo), hi);
                } else if bias != 0.0 {
                    r = _mm512_add_ps(r, biasv);
                }
                _mm512_storeu_ps(p, r);
            }
        }
    }
}

/// See [`super::isa::MicroFn`]; the tile is `MR × 8·NV`, the A panel's columns `MA` floats apart
/// and the B panel's rows `8·NB` (as [`avx512_micro`]).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `a` holds `kc·MA` floats, `b` holds `kc·8·NB`, and `c` is
/// valid for the tile with row stride `ldc`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx2_micro<const MR: usize, const NV: usize, const MA: usize, const NB: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
) {
    // SAFETY: every load stays inside the panels and every store inside the tile, as the
    // caller guarantees.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(b.add(8 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*a.add(i));
                for v in 0..NV {
                    row[v] = _mm256_fmadd_ps(ai, bv[v], row[v]);
                }
            }
            a = a.add(MA);
            b = b.add(8 * NB);
        }
        let betav = _mm256_set1_ps(beta);
        let alphav = _mm256_set1_ps(alpha);
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let p = c.add(i * ldc + 8 * v);
                let r = if alpha == 0.0 {
                    _mm256_mul_ps(betav, *x)
                } else {
                    _mm256_fmadd_ps(alphav, _mm256_loadu_ps(p), _mm256_mul_ps(betav, *x))
                };
                _mm256_storeu_ps(p, r);
            }
        }
        if let Some(fx) = fx {
            fx.apply(c, ldc, MR, 8 * NV);
        }
    }
}

/// # Safety
/// The CPU supports AVX-512F; otherwise as [`gemv::AxpyFn`].
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn axpy_avx512(
    len: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    rows: *const f32,
    rstride: usize,
    out: *mut f32,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: forwarded contract.
    unsafe { gemv::axpy_body::<true>(len, k, x, xs, rows, rstride, out, alpha, beta) }
}

/// # Safety
/// The CPU supports AVX2 and FMA; otherwise as [`gemv::AxpyFn`].
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn axpy_avx2(
    len: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    rows: *const f32,
    rstride: usize,
    out: *mut f32,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: forwarded contract.
    unsafe { gemv::axpy_body::<true>(len, k, x, xs, rows, rstride, out, alpha, beta) }
}

gemv::strip_fn!(strip_avx512, true, 16 * AVX512_NV, "avx512f,avx2,fma");
gemv::strip_fn!(strip_avx2, true, 8 * AVX2_NV, "avx2,fma");

/// # Safety
/// The CPU supports AVX-512F; otherwise as [`gemv::DotsFn`].
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dots_avx512(
    count: usize,
    k: usize,
    x: *const f32,
    v: *const f32,
    vstride: usize,
    out: *mut f32,
    os: usize,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: forwarded contract.
    unsafe { gemv::dots_body::<true>(count, k, x, v, vstride, out, os, alpha, beta) }
}

/// # Safety
/// The CPU supports AVX2 and FMA; otherwise as [`gemv::DotsFn`].
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dots_avx2(
    count: usize,
    k: usize,
    x: *const f32,
    v: *const f32,
    vstride: usize,
    out: *mut f32,
    os: usize,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: forwarded contract.
    unsafe { gemv::dots_body::<true>(count, k, x, v, vstride, out, os, alpha, beta) }
}

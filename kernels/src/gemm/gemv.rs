//! Matrix-vector products (m == 1 or n == 1): no packing, no workspace.
//!
//! Two shapes of loop cover every contiguous layout:
//! - `axpy`: `out[j] += Σ_p x[p]·row_p[j]` over contiguous rows (y = xᵀB with B row-major,
//!   or y = A·x with A column-major);
//! - `dots`: `out[j] = x · v_j` over contiguous vectors (y = xᵀB with B column-major, or
//!   y = A·x with A row-major).
//!
//! The bodies are plain Rust written so LLVM vectorises them; `x86.rs` recompiles them with
//! AVX2/AVX-512 enabled, and the portable wrappers here serve everything else.

use super::driver::{par_for, Out, Raw};
use super::isa::Isa;

/// `out[j] = (alpha == 0 ? 0 : alpha·out[j]) + beta·Σ_{p<k} x[p·xs]·rows[p·rstride + j]` for
/// `j < len`.
///
/// # Safety
/// Every index named above is in bounds; `out` does not overlap the inputs.
pub(crate) type AxpyFn = unsafe fn(
    len: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    rows: *const f32,
    rstride: usize,
    out: *mut f32,
    alpha: f32,
    beta: f32,
);

/// `out[j·os] = (alpha == 0 ? 0 : alpha·out[j·os]) + beta·Σ_{p<k} x[p]·v[j·vstride + p]` for
/// `j < count`.
///
/// # Safety
/// Every index named above is in bounds; `out` does not overlap the inputs.
pub(crate) type DotsFn = unsafe fn(
    count: usize,
    k: usize,
    x: *const f32,
    v: *const f32,
    vstride: usize,
    out: *mut f32,
    os: usize,
    alpha: f32,
    beta: f32,
);

/// Whether the portable bodies may use `mul_add` (a single instruction only when the target
/// has FMA; otherwise it is a slow libm call).
const PORTABLE_FMA: bool = cfg!(any(target_arch = "aarch64", target_feature = "fma"));

#[inline(always)]
fn fma<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn merge(o: &mut f32, v: f32, alpha: f32, beta: f32) {
    *o = if alpha == 0.0 {
        beta * v
    } else {
        alpha * *o + beta * v
    };
}

/// Output columns per pass of [`axpy_body`]: the accumulator lives in L1.
const AXPY_W: usize = 256;

/// See [`AxpyFn`]. `#[inline(always)]` so each ISA wrapper gets its own vectorisation.
///
/// # Safety
/// As [`AxpyFn`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn axpy_body<const F: bool>(
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
    let row = |p: usize, j0: usize, w: usize| -> &[f32] {
        // SAFETY: p < k and j0 + w <= len, in bounds by the caller's contract.
        unsafe { std::slice::from_raw_parts(rows.add(p * rstride + j0), w) }
    };
    // SAFETY: p < k, in bounds by the caller's contract.
    let xv = |p: usize| unsafe { *x.add(p * xs) };
    let mut j0 = 0;
    while j0 < len {
        let w = AXPY_W.min(len - j0);
        let mut acc = [0.0f32; AXPY_W];
        let acc = &mut acc[..w];
        // Four rows per pass over the accumulator: contiguous streams, a quarter of the
        // accumulator traffic.
        let mut p = 0;
        while p + 4 <= k {
            let (x0, x1, x2, x3) = (xv(p), xv(p + 1), xv(p + 2), xv(p + 3));
            let (r0, r1) = (row(p, j0, w), row(p + 1, j0, w));
            let (r2, r3) = (row(p + 2, j0, w), row(p + 3, j0, w));
            for j in 0..w {
                let s = fma::<F>(x0, r0[j], acc[j]);
                let s = fma::<F>(x1, r1[j], s);
                let s = fma::<F>(x2, r2[j], s);
                acc[j] = fma::<F>(x3, r3[j], s);
            }
            p += 4;
        }
        while p < k {
            let (x0, r0) = (xv(p), row(p, j0, w));
            for j in 0..w {
                acc[j] = fma::<F>(x0, r0[j], acc[j]);
            }
            p += 1;
        }
        // SAFETY: j0 + w <= len, in bounds by the caller's contract.
        let o = unsafe { std::slice::from_raw_parts_mut(out.add(j0), w) };
        for (o, v) in o.iter_mut().zip(acc.iter()) {
            merge(o, *v, alpha, beta);
        }
        j0 += w;
    }
}

/// Partial sums per column in [`strip_body`]: independent FMA chains, so the depth loop runs
/// at the FMA units' throughput rather than one FMA's latency per row.
const STRIP_CHAINS: usize = 4;

/// [`AxpyFn`] for one strip of a packed B (`W` = the panel width, `rstride` = `W`, every row
/// `W` floats long even where `len < W`): the `W` accumulators stay in registers, as
/// [`STRIP_CHAINS`] partial sums each. [`axpy_body`]'s accumulator is a buffer in memory,
/// which for a 32-wide strip made every four rows wait on a store and a reload (the
/// recurrent step of an LSTM at batch 1 ran at 40 GB/s of weights; see BENCHMARKS.md).
///
/// # Safety
/// As [`AxpyFn`], with `W` floats readable in each of the `k` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn strip_body<const F: bool, const W: usize>(
    len: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    rows: *const f32,
    out: *mut f32,
    alpha: f32,
    beta: f32,
) {
    // SAFETY: p < k, and W floats per row, by the caller's contract.
    let row = |p: usize| -> &[f32; W] { unsafe { &*rows.add(p * W).cast::<[f32; W]>() } };
    // SAFETY: p < k, in bounds by the caller's contract.
    let xv = |p: usize| unsafe { *x.add(p * xs) };
    let mut acc = [[0.0f32; W]; STRIP_CHAINS];
    let mut p = 0;
    while p + STRIP_CHAINS <= k {
        for (q, a) in acc.iter_mut().enumerate() {
            let (xq, r) = (xv(p + q), row(p + q));
            for j in 0..W {
                a[j] = fma::<F>(xq, r[j], a[j]);
            }
        }
        p += STRIP_CHAINS;
    }
    while p < k {
        let (xq, r) = (xv(p), row(p));
        for j in 0..W {
            acc[0][j] = fma::<F>(xq, r[j], acc[0][j]);
        }
        p += 1;
    }
    let mut sum = [0.0f32; W];
    for a in &acc {
        for j in 0..W {
            sum[j] += a[j];
        }
    }
    // SAFETY: len <= W output columns, by the caller's contract.
    let o = unsafe { std::slice::from_raw_parts_mut(out, len.min(W)) };
    for (o, v) in o.iter_mut().zip(sum) {
        merge(o, v, alpha, beta);
    }
}

/// Lanes of independent partial sums per dot product in [`dots_body`].
const DOT_L: usize = 32;

#[inline(always)]
fn reduce(mut a: [f32; DOT_L]) -> f32 {
    let mut half = DOT_L / 2;
    while half > 0 {
        for l in 0..half {
            a[l] += a[l + half];
        }
        half /= 2;
    }
    a[0]
}

/// See [`DotsFn`]. Four dot products at a time share each load of `x`.
///
/// # Safety
/// As [`DotsFn`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn dots_body<const F: bool>(
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
    // SAFETY: x holds k floats by the caller's contract.
    let x = unsafe { std::slice::from_raw_parts(x, k) };
    // SAFETY: j < count, so vector j's k floats are in bounds by the caller's contract.
    let vec = |j: usize| unsafe { std::slice::from_raw_parts(v.add(j * vstride), k) };
    let kb = k / DOT_L * DOT_L;
    let store = |j: usize, s: f32| {
        // SAFETY: j < count, in bounds by the caller's contract.
        merge(unsafe { &mut *out.add(j * os) }, s, alpha, beta);
    };
    let mut j = 0;
    while j + 4 <= count {
        let vs = [vec(j), vec(j + 1), vec(j + 2), vec(j + 3)];
        let mut acc = [[0.0f32; DOT_L]; 4];
        for p in (0..kb).step_by(DOT_L) {
            let xs = &x[p..p + DOT_L];
            for q in 0..4 {
                let vq = &vs[q][p..p + DOT_L];
                for l in 0..DOT_L {
                    acc[q][l] = fma::<F>(xs[l], vq[l], acc[q][l]);
                }
            }
        }
        for q in 0..4 {
            let mut s = reduce(acc[q]);
            for p in kb..k {
                s = fma::<F>(x[p], vs[q][p], s);
            }
            store(j + q, s);
        }
        j += 4;
    }
    while j < count {
        let vj = vec(j);
        let mut acc = [0.0f32; DOT_L];
        for p in (0..kb).step_by(DOT_L) {
            for l in 0..DOT_L {
                acc[l] = fma::<F>(x[p + l], vj[p + l], acc[l]);
            }
        }
        let mut s = reduce(acc);
        for p in kb..k {
            s = fma::<F>(x[p], vj[p], s);
        }
        store(j, s);
        j += 1;
    }
}

/// # Safety
/// As [`AxpyFn`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn axpy_portable(
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
    unsafe { axpy_body::<PORTABLE_FMA>(len, k, x, xs, rows, rstride, out, alpha, beta) }
}

/// Defines `$name`, an [`AxpyFn`] over one `$w`-wide strip of a packed B through
/// [`strip_body`] (its `rstride` argument is the panel width), compiled with the target
/// features `$features` where given: one per micro-kernel family.
macro_rules! strip_fn {
    ($name:ident, $fma:expr, $w:expr $(, $features:literal)?) => {
        /// [`strip_body`](crate::gemm::gemv::strip_body) for this family's panel width.
        ///
        /// # Safety
        /// As [`AxpyFn`](crate::gemm::gemv::AxpyFn), with `rstride` the panel width, on a CPU
        /// that runs the function's target features.
        $(#[target_feature(enable = $features)])?
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            len: usize,
            k: usize,
            x: *const f32,
            xs: usize,
            rows: *const f32,
            _rstride: usize,
            out: *mut f32,
            alpha: f32,
            beta: f32,
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                crate::gemm::gemv::strip_body::<{ $fma }, { $w }>(
                    len, k, x, xs, rows, out, alpha, beta,
                )
            }
        }
    };
}
pub(crate) use strip_fn;

strip_fn!(strip_portable, PORTABLE_FMA, super::portable::NR);

/// # Safety
/// As [`DotsFn`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn dots_portable(
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
    unsafe { dots_body::<PORTABLE_FMA>(count, k, x, v, vstride, out, os, alpha, beta) }
}

/// Runs the product as a matrix-vector loop if its shape and strides allow one; returns whether
/// it did. `a`, `b` and `out` were bounds-checked by the caller for `m × k`, `k × n`, `m × n`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn try_gemv(
    isa: &Isa,
    m: usize,
    n: usize,
    k: usize,
    a: Raw,
    b: Raw,
    out: Out,
    alpha: f32,
    beta: f32,
    par: bool,
    threads: usize,
) -> bool {
    if m == 1 && b.cs == 1 {
        axpy_path(
            isa,
            n,
            k,
            Raw { rs: 0, ..a },
            b,
            out,
            alpha,
            beta,
            par,
            threads,
        );
    } else if m == 1 && b.rs == 1 && a.cs == 1 {
        dots_path(
            isa, n, k, a.ptr, b.ptr, b.cs, out.ptr, 1, alpha, beta, par, threads,
        );
    } else if n == 1 && a.cs == 1 && b.rs == 1 {
        dots_path(
            isa, m, k, b.ptr, a.ptr, a.rs, out.ptr, out.ldc, alpha, beta, par, threads,
        );
    } else if n == 1 && a.rs == 1 && (m == 1 || out.ldc == 1) {
        // y = A·x with A column-major: the columns of A are the contiguous rows of the axpy.
        let x = Raw {
            ptr: b.ptr,
            rs: 0,
            cs: b.rs,
        };
        let rows = Raw {
            ptr: a.ptr,
            rs: a.cs,
            cs: 1,
        };
        let out = Out {
            ptr: out.ptr,
            ldc: 0,
        };
        axpy_path(isa, m, k, x, rows, out, alpha, beta, par, threads);
    } else {
        return false;
    }
    true
}

/// `out[0, j] = alpha·out + beta·Σ_p x[0, p]·rows[p, j]` for `j < len` (`rows.cs == 1`), split
/// over `threads` column ranges when `par`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn axpy_path(
    isa: &Isa,
    len: usize,
    k: usize,
    x: Raw,
    rows: Raw,
    out: Out,
    alpha: f32,
    beta: f32,
    par: bool,
    threads: usize,
) {
    let tasks = if par {
        threads.min(len.div_ceil(64))
    } else {
        1
    };
    let chunk = len.div_ceil(tasks).next_multiple_of(16);
    par_for(tasks, &|t| {
        // Whole-struct captures: the structs are Sync, their raw-pointer fields are not.
        let (x, rows, out) = (&x, &rows, &out);
        let lo = (t * chunk).min(len);
        let hi = ((t + 1) * chunk).min(len);
        if lo < hi {
            // SAFETY: columns lo..hi of the checked views; tasks write disjoint columns.
            unsafe {
                (isa.axpy)(
                    hi - lo,
                    k,
                    x.ptr,
                    x.cs,
                    rows.ptr.add(lo),
                    rows.rs,
                    out.ptr.add(lo),
                    alpha,
                    beta,
                )
            }
        }
    });
}

/// `out[j·os] = alpha·out + beta·x · v_j` for `j < count`, split over `threads` ranges of j
/// when `par`. `x` and each `v_j` (at `v + j·vstride`) hold `k` contiguous floats.
#[allow(clippy::too_many_arguments)]
fn dots_path(
    isa: &Isa,
    count: usize,
    k: usize,
    x: *const f32,
    v: *const f32,
    vstride: usize,
    out: *mut f32,
    os: usize,
    alpha: f32,
    beta: f32,
    par: bool,
    threads: usize,
) {
    let tasks = if par {
        threads.min(count.div_ceil(8))
    } else {
        1
    };
    let chunk = count.div_ceil(tasks).next_multiple_of(4);
    let (x, v, out) = (
        Raw {
            ptr: x,
            rs: 0,
            cs: 1,
        },
        Raw {
            ptr: v,
            rs: vstride,
            cs: 1,
        },
        Out { ptr: out, ldc: os },
    );
    par_for(tasks, &|t| {
        // Whole-struct captures: the structs are Sync, their raw-pointer fields are not.
        let (x, v, out) = (&x, &v, &out);
        let lo = (t * chunk).min(count);
        let hi = ((t + 1) * chunk).min(count);
        if lo < hi {
            // SAFETY: outputs lo..hi of the checked views; tasks write disjoint outputs.
            unsafe {
                (isa.dots)(
                    hi - lo,
                    k,
                    x.ptr,
                    v.ptr.add(lo * v.rs),
                    v.rs,
                    out.ptr.add(lo * out.ldc),
                    out.ldc,
                    alpha,
                    beta,
                )
            }
        }
    });
}

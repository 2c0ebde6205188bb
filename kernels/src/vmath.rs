//! Vectorised transcendental functions over slices: `exp`, `sigmoid`, `tanh` in place.
//!
//! The scalar functions in [`crate::activation`] call libm, one value at a time; these are
//! branch-free polynomial and rational approximations that LLVM turns into SIMD loops, compiled
//! once per ISA (AVX-512, AVX2 + FMA, and the baseline for NEON and everything else) and picked
//! at run time. They serve the hot loops where one activation per element dominates: the LSTM
//! and GRU gates.
//!
//! Accuracy (checked against f64 in the tests): `exp` within 2 ulp on [-87, 88]; `sigmoid`
//! within 3e-7 absolute; `tanh` within 5e-7 absolute (Eigen's 13/6 rational approximation).
//! Inputs are clamped to the range where f32 results are finite, so `sigmoid` and `tanh`
//! saturate exactly as the exact functions do in f32; NaN inputs are not propagated.

// The polynomial coefficients are kept digit for digit as published.
#![allow(clippy::excessive_precision)]

/// e^x for x in [-87, 88] (clamped outside): Cephes' `expf` polynomial after the reduction
/// x = n·ln2 + r, |r| ≤ ln2/2, with 2^n built from its bits.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_15e-4f32;
    p = p * r + 1.398_199_950_7e-3;
    p = p * r + 8.333_451_907_3e-3;
    p = p * r + 4.166_579_589_4e-2;
    p = p * r + 1.666_666_545_9e-1;
    p = p * r + 5.000_000_120_1e-1;
    let e = p * r * r + r + 1.0;
    // 2^n from its bits. n is a whole number in [-125, 127] here, so n + 127 + 2^23 holds
    // n + 127 in its low mantissa bits, and shifting them into the exponent gives 2^n; unlike
    // `n as i32` (a saturating cast, compiled lane by lane) this stays vectorised.
    e * f32::from_bits((n + 8_388_735.0).to_bits() << 23)
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid_approx(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

/// tanh(x): x·P(x²)/Q(x²) on |x| ≤ 7.9 (where f32 tanh reaches ±1), as Eigen computes it.
#[inline(always)]
pub fn tanh_approx(x: f32) -> f32 {
    let x = x.clamp(-7.905_311_107_635_498, 7.905_311_107_635_498);
    let x2 = x * x;
    let mut p = -2.760_768_477_423_55e-16f32;
    p = p * x2 + 2.000_187_904_824_77e-13;
    p = p * x2 - 8.604_671_522_137_35e-11;
    p = p * x2 + 5.122_297_090_371_14e-8;
    p = p * x2 + 1.485_722_357_179_79e-5;
    p = p * x2 + 6.372_619_288_754_36e-4;
    p = p * x2 + 4.893_524_558_917_86e-3;
    let mut q = 1.198_258_394_667_02e-6f32;
    q = q * x2 + 1.185_347_056_866_54e-4;
    q = q * x2 + 2.268_434_632_439_00e-3;
    q = q * x2 + 4.893_525_185_543_85e-3;
    x * p / q
}

macro_rules! per_isa {
    ($name:ident, $f:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(xs: &mut [f32]) {
            #[inline(always)]
            fn body(xs: &mut [f32]) {
                xs.iter_mut().for_each(|x| *x = $f(*x));
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512(xs: &mut [f32]) {
                    body(xs)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2(xs: &mut [f32]) {
                    body(xs)
                }
                match crate::gemm::Kernel::detect() {
                    // SAFETY: `Kernel::detect` only reports families this CPU runs.
                    crate::gemm::Kernel::Avx512 => return unsafe { avx512(xs) },
                    // SAFETY: as above.
                    crate::gemm::Kernel::Avx2 => return unsafe { avx2(xs) },
                    _ => {}
                }
            }
            body(xs)
        }
    };
}

/// `x = f(x)` for every element, compiled for the widest vector ISA this CPU runs, so LLVM
/// vectorises `f` in 16 or 8 lanes rather than baseline SSE's 4 (same operations, same bits).
#[inline(always)]
pub fn map_inplace<F: Fn(f32) -> f32 + Copy>(xs: &mut [f32], f: F) {
    #[inline(always)]
    fn body<F: Fn(f32) -> f32>(xs: &mut [f32], f: F) {
        xs.iter_mut().for_each(|x| *x = f(*x));
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn avx512<F: Fn(f32) -> f32>(xs: &mut [f32], f: F) {
            body(xs, f)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<F: Fn(f32) -> f32>(xs: &mut [f32], f: F) {
            body(xs, f)
        }
        match crate::gemm::Kernel::detect() {
            // SAFETY: `Kernel::detect` only reports families this CPU runs.
            crate::gemm::Kernel::Avx512 => return unsafe { avx512(xs, f) },
            // SAFETY: as above.
            crate::gemm::Kernel::Avx2 => return unsafe { avx2(xs, f) },
            _ => {}
        }
    }
    body(xs, f)
}

/// `out[i] = f(xs[i])` over the common length, vectorised as [`map_inplace`].
#[inline(always)]
pub fn map_into<T: Copy, U, F: Fn(T) -> U + Copy>(xs: &[T], out: &mut [U], f: F) {
    #[inline(always)]
    fn body<T: Copy, U, F: Fn(T) -> U>(xs: &[T], out: &mut [U], f: F) {
        out.iter_mut().zip(xs).for_each(|(o, &x)| *o = f(x));
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn avx512<T: Copy, U, F: Fn(T) -> U>(xs: &[T], out: &mut [U], f: F) {
            body(xs, out, f)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: Copy, U, F: Fn(T) -> U>(xs: &[T], out: &mut [U], f: F) {
            body(xs, out, f)
        }
        match crate::gemm::Kernel::detect() {
            // SAFETY: `Kernel::detect` only reports families this CPU runs.
            crate::gemm::Kernel::Avx512 => return unsafe { avx512(xs, out, f) },
            // SAFETY: as above.
            crate::gemm::Kernel::Avx2 => return unsafe { avx2(xs, out, f) },
            _ => {}
        }
    }
    body(xs, out, f)
}

/// `out[i] = f(a[i], b[i])` over the common length, vectorised as [`map_inplace`].
#[inline(always)]
pub fn map2_into<A: Copy, B: Copy, U, F: Fn(A, B) -> U + Copy>(
    a: &[A],
    b: &[B],
    out: &mut [U],
    f: F,
) {
    #[inline(always)]
    fn body<A: Copy, B: Copy, U, F: Fn(A, B) -> U>(a: &[A], b: &[B], out: &mut [U], f: F) {
        out.iter_mut()
            .zip(a.iter().zip(b))
            .for_each(|(o, (&x, &y))| *o = f(x, y));
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn avx512<A: Copy, B: Copy, U, F: Fn(A, B) -> U>(
            a: &[A],
            b: &[B],
            out: &mut [U],
            f: F,
        ) {
            body(a, b, out, f)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<A: Copy, B: Copy, U, F: Fn(A, B) -> U>(
            a: &[A],
            b: &[B],
            out: &mut [U],
            f: F,
        ) {
            body(a, b, out, f)
        }
        match crate::gemm::Kernel::detect() {
            // SAFETY: `Kernel::detect` only reports families this CPU runs.
            crate::gemm::Kernel::Avx512 => return unsafe { avx512(a, b, out, f) },
            // SAFETY: as above.
            crate::gemm::Kernel::Avx2 => return unsafe { avx2(a, b, out, f) },
            _ => {}
        }
    }
    body(a, b, out, f)
}

/// Calls the `#[inline(always)]` function `$body` compiled for the widest vector ISA this CPU
/// runs (AVX-512, AVX2 + FMA, else the baseline), so LLVM vectorises it in 16 or 8 lanes.
macro_rules! widest {
    ($body:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            match crate::gemm::Kernel::detect() {
                // SAFETY: `Kernel::detect` only reports families this CPU runs.
                crate::gemm::Kernel::Avx512 => return unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                crate::gemm::Kernel::Avx2 => return unsafe { avx2($($arg),*) },
                _ => {}
            }
        }
        $body($($arg),*)
    }};
}

/// `x += r` element-wise over the common length, vectorised as [`map_inplace`].
pub fn add_inplace(xs: &mut [f32], r: &[f32]) {
    #[inline(always)]
    fn body(xs: &mut [f32], r: &[f32]) {
        xs.iter_mut().zip(r).for_each(|(x, r)| *x += r);
    }
    widest!(body(xs: &mut [f32], r: &[f32]))
}

/// `(min(0, min xs), max(0, max xs))` with NaNs ignored (as `f32::min` and `f32::max` ignore
/// them): DynamicQuantizeLinear's range. Sixteen independent lanes so the comparisons
/// vectorise; min and max are exact, so any order gives the sequential fold's values.
pub fn range_with_zero(xs: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::Kernel::detect() == crate::gemm::Kernel::Avx512 {
        // SAFETY: `Kernel::detect` reports AVX-512 only where the CPU runs it.
        return unsafe { range_avx512(xs) };
    }
    range_lanes(xs, (0.0, 0.0))
}

/// [`range_with_zero`] of `xs`, started from `(lo, hi)`. `v < lo` is false for a NaN, so a NaN
/// keeps the bound (as `vminps`/`vmaxps` do).
/// Eight independent lanes, so the comparisons do not wait on each other.
fn range_lanes(xs: &[f32], (lo, hi): (f32, f32)) -> (f32, f32) {
    let step =
        |(lo, hi): (f32, f32), &v: &f32| (if v < lo { v } else { lo }, if v > hi { v } else { hi });
    let mut lanes = [(lo, hi); 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = step(*l, v);
        }
    }
    let (lo, hi) = lanes
        .iter()
        .fold((lo, hi), |acc, &(l, h)| step(step(acc, &l), &h));
    tail.iter().fold((lo, hi), step)
}

/// [`range_with_zero`] 64 values per step in four pairs of registers (`vminps`/`vmaxps` keep
/// their second operand, the bound, for a NaN).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn range_avx512(xs: &[f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); 4];
    let mut hi = [_mm512_setzero_ps(); 4];
    let chunks = xs.chunks_exact(64);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..4 {
            // SAFETY: `c` holds 64 floats; unaligned loads of 16 of them.
            let v = unsafe { _mm512_loadu_ps(c.as_ptr().add(16 * j)) };
            lo[j] = _mm512_min_ps(v, lo[j]);
            hi[j] = _mm512_max_ps(v, hi[j]);
        }
    }
    let lo = _mm512_min_ps(_mm512_min_ps(lo[0], lo[1]), _mm512_min_ps(lo[2], lo[3]));
    let hi = _mm512_max_ps(_mm512_max_ps(hi[0], hi[1]), _mm512_max_ps(hi[2], hi[3]));
    range_lanes(tail, (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi)))
}

/// The LSTM cell over `n = c.len()` units, in one pass: with the gates in ONNX order
/// (`i, o, f, c`), each the recurrent product `g[k]` plus the input projection `p[k]`,
/// `c = σ(f)·c + σ(i)·tanh(c̃)` and `h = σ(o)·tanh(c)`. The same operations, in the same
/// order, as the slice functions applied gate by gate after adding `p` into `g` (same bits),
/// without writing the gates back or reading them again.
pub fn lstm_cell(g: [&[f32]; 4], p: [&[f32]; 4], c: &mut [f32], h: &mut [f32]) {
    #[inline(always)]
    fn body(g: [&[f32]; 4], p: [&[f32]; 4], c: &mut [f32], h: &mut [f32]) {
        let n = c.len();
        let h = &mut h[..n];
        let (gi, go, gf, gc) = (&g[0][..n], &g[1][..n], &g[2][..n], &g[3][..n]);
        let (pi, po, pf, pc) = (&p[0][..n], &p[1][..n], &p[2][..n], &p[3][..n]);
        for j in 0..n {
            let i = sigmoid_approx(gi[j] + pi[j]);
            let o = sigmoid_approx(go[j] + po[j]);
            let f = sigmoid_approx(gf[j] + pf[j]);
            let cand = tanh_approx(gc[j] + pc[j]);
            let cn = f * c[j] + i * cand;
            c[j] = cn;
            h[j] = tanh_approx(cn) * o;
        }
    }
    widest!(body(g: [&[f32]; 4], p: [&[f32]; 4], c: &mut [f32], h: &mut [f32]))
}

/// Lanes of the reductions below: wide enough for one AVX-512 register.
const LANES: usize = 16;

/// Softmax of one row, max-subtracted (`out = e^(x - max) / Σ`), or LogSoftmax
/// (`out = x - max - ln Σ`) when `log`; `x` and `out` have the same length. The exponentials
/// are [`exp_approx`]; the max and the sum are kept per lane, then folded.
pub fn softmax(x: &[f32], out: &mut [f32], log: bool) {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [f32], log: bool) {
        let mut lane = [f32::NEG_INFINITY; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail = chunks
            .remainder()
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for c in chunks {
            for (m, &v) in lane.iter_mut().zip(c) {
                *m = m.max(v);
            }
        }
        let max = lane.iter().fold(tail, |m, &v| m.max(v));
        let mut sums = [0.0f32; LANES];
        let mut tail = 0.0f32;
        let mut outs = out.chunks_exact_mut(LANES);
        let mut xs = x.chunks_exact(LANES);
        for (o, c) in (&mut outs).zip(&mut xs) {
            for ((o, &v), s) in o.iter_mut().zip(c).zip(sums.iter_mut()) {
                *o = exp_below_max(v - max);
                *s += *o;
            }
        }
        for (o, &v) in outs.into_remainder().iter_mut().zip(xs.remainder()) {
            *o = exp_below_max(v - max);
            tail += *o;
        }
        let sum = sums.iter().sum::<f32>() + tail;
        if log {
            let ln_sum = sum.ln();
            out.iter_mut()
                .zip(x)
                .for_each(|(o, &v)| *o = (v - max) - ln_sum);
        } else {
            let inv = 1.0 / sum;
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
    /// e^d for d ≤ 0, exactly 0 where e^d is below the smallest normal f32.
    #[inline(always)]
    fn exp_below_max(d: f32) -> f32 {
        let e = exp_approx(d);
        if d < -87.0 {
            0.0
        } else {
            e
        }
    }
    assert_eq!(x.len(), out.len(), "softmax: row lengths differ");
    widest!(body(x: &[f32], out: &mut [f32], log: bool))
}

per_isa!(
    exp_inplace,
    exp_approx,
    "`x = e^x` for every element (see the module's accuracy)."
);
per_isa!(
    sigmoid_inplace,
    sigmoid_approx,
    "`x = 1 / (1 + e^-x)` for every element."
);
per_isa!(
    tanh_inplace,
    tanh_approx,
    "`x = tanh(x)` for every element."
);

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-20000..=20000).map(|i| i as f32 * 0.0045).collect();
        v.extend([
            -87.0, -60.0, -1e-30, 0.0, 1e-30, 1e-6, 60.0, 88.0, -200.0, 200.0,
        ]);
        v
    }

    /// The lanes' range is the sequential fold's, NaNs skipped, over lengths around the
    /// 16-lane chunks, the extremes in the tail and in the chunks.
    #[test]
    fn range_with_zero_is_the_fold() {
        let fold = |xs: &[f32]| {
            xs.iter()
                .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)))
        };
        let mut xs: Vec<f32> = (0..70)
            .map(|i| ((i * 37 % 23) as f32 - 9.0) * 0.37)
            .collect();
        xs[5] = f32::NAN;
        xs[40] = -100.0;
        xs[66] = 250.0;
        for n in [0, 1, 15, 16, 17, 33, 64, 65, 70] {
            assert_eq!(range_with_zero(&xs[..n]), fold(&xs[..n]), "n = {n}");
            assert_eq!(range_lanes(&xs[..n], (0.0, 0.0)), fold(&xs[..n]), "n = {n}");
        }
        assert_eq!(range_with_zero(&[3.0, 5.0]), (0.0, 5.0));
        assert_eq!(range_with_zero(&[-3.0; 20]), (-3.0, 0.0));
        assert_eq!(range_with_zero(&[f32::NAN; 20]), (0.0, 0.0));
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let xs: Vec<f32> = (-8700..=8800).map(|i| i as f32 * 0.01).collect();
        let mut ys = xs.clone();
        exp_inplace(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = (x as f64).exp();
            let ulp = (want as f32).to_bits().abs_diff(y.to_bits());
            assert!(ulp <= 2, "exp({x}) = {y}, want {want} ({ulp} ulp)");
        }
    }

    #[test]
    fn sigmoid_and_tanh_match_f64() {
        let xs = grid();
        let (mut s, mut t) = (xs.clone(), xs.clone());
        sigmoid_inplace(&mut s);
        tanh_inplace(&mut t);
        for (i, &x) in xs.iter().enumerate() {
            let xd = x as f64;
            let sw = 1.0 / (1.0 + (-xd).exp());
            assert!(
                (s[i] as f64 - sw).abs() <= 3e-7,
                "sigmoid({x}) = {}, want {sw}",
                s[i]
            );
            let tw = xd.tanh();
            assert!(
                (t[i] as f64 - tw).abs() <= 5e-7,
                "tanh({x}) = {}, want {tw}",
                t[i]
            );
            assert!(t[i].abs() <= 1.0 && (0.0..=1.0).contains(&s[i]));
        }
        // Saturation and symmetry where the exact f32 results are exact.
        assert_eq!(s[xs.len() - 1], 1.0);
        let mut e = [-200.0f32, 200.0, 0.0];
        tanh_inplace(&mut e);
        assert_eq!(e, [-1.0, 1.0, 0.0]);
    }

    #[test]
    fn slice_functions_equal_the_inline_scalar() {
        // Whichever ISA body this CPU picked, each element equals the inline scalar formula.
        let xs = grid();
        let mut t = xs.clone();
        tanh_inplace(&mut t);
        for (x, y) in xs.iter().zip(&t) {
            assert!((tanh_approx(*x) - y).abs() <= 1e-7);
        }
    }

    #[test]
    fn lstm_cell_equals_the_gates_activated_one_by_one() {
        // 37 units: two vectors and a tail. Gate inputs over [-12, 12], cell states over ±5.
        let n = 37;
        let val = |k: usize, m: usize| ((k * 7919) % m) as f32 / m as f32 * 24.0 - 12.0;
        let g: Vec<f32> = (0..4 * n).map(|k| val(k, 1009)).collect();
        let p: Vec<f32> = (0..4 * n).map(|k| val(k + 5, 997) / 4.0).collect();
        let c0: Vec<f32> = (0..n).map(|j| (j as f32 - 18.0) / 3.6).collect();
        // The gates summed, activated gate by gate, then the state and the output.
        let mut s: Vec<f32> = g.iter().zip(&p).map(|(a, b)| a + b).collect();
        sigmoid_inplace(&mut s[..3 * n]);
        tanh_inplace(&mut s[3 * n..]);
        let c_want: Vec<f32> = (0..n)
            .map(|j| s[2 * n + j] * c0[j] + s[j] * s[3 * n + j])
            .collect();
        let mut h_want = c_want.clone();
        tanh_inplace(&mut h_want);
        h_want
            .iter_mut()
            .zip(&s[n..2 * n])
            .for_each(|(h, o)| *h *= o);
        let four = |v: &[f32]| -> [Vec<f32>; 4] { [0, 1, 2, 3].map(|k| v[k * n..][..n].to_vec()) };
        let (gs, ps) = (four(&g), four(&p));
        let (mut c, mut h) = (c0.clone(), vec![f32::NAN; n]);
        lstm_cell(
            [0, 1, 2, 3].map(|k| &gs[k][..]),
            [0, 1, 2, 3].map(|k| &ps[k][..]),
            &mut c,
            &mut h,
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&c), bits(&c_want), "cell state");
        assert_eq!(bits(&h), bits(&h_want), "output");
    }

    /// Softmax and LogSoftmax against f64, on rows with and without a tail past the lanes.
    #[test]
    fn softmax_matches_f64() {
        for n in [1, 7, 16, 37, 1000] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 113) as f32 * 0.37 - 20.0)
                .collect();
            let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
            let mut out = vec![0.0; n];
            softmax(&x, &mut out, false);
            for (o, &v) in out.iter().zip(&x) {
                let want = (v as f64 - max).exp() / sum;
                assert!(
                    (*o as f64 - want).abs() <= 1e-6 * want.max(1e-3),
                    "n {n}: {o} vs {want}"
                );
            }
            softmax(&x, &mut out, true);
            for (o, &v) in out.iter().zip(&x) {
                let want = v as f64 - max - sum.ln();
                assert!(
                    (*o as f64 - want).abs() <= 1e-5,
                    "log, n {n}: {o} vs {want}"
                );
            }
        }
    }
}

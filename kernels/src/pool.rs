//! Max and average pooling over one plane, with the window geometry of [`crate::conv::Window2d`].
//!
//! Windows are clipped to the input: taps in the padding (or, with ceil mode, past it) are
//! skipped. Semantics follow onnxruntime's reference pooling functors.

use crate::conv::{valid_outputs, valid_taps, Window2d};

/// Max over the in-bounds taps of each window; a window entirely in the padding gives
/// `f32::MIN` (onnxruntime's `lowest()`).
pub fn max_pool(g: &Window2d, x: &[f32], y: &mut [f32]) {
    max_pool_planes(g, 1, x, y)
}

/// [`max_pool`] over `planes` consecutive planes (`x` and `y` hold them back to back): one
/// call for a run of small planes, whose per-plane setup would otherwise rival the work.
pub fn max_pool_planes(g: &Window2d, planes: usize, x: &[f32], y: &mut [f32]) {
    let (isz, osz) = (g.in_size(), g.out_size());
    let (x, y) = (&x[..planes * isz], &mut y[..planes * osz]);
    if y.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if tiles(g)
        && (g.kh, g.kw) == (2, 2)
        && crate::gemm::Kernel::detect() == crate::gemm::Kernel::Avx512
    {
        // SAFETY: AVX-512F was detected; the window tiles the input (checked by `tiles`).
        return unsafe { max_pool_2x2_avx512(g, planes, x, y) };
    }
    for (xp, yp) in x
        .chunks_exact(isz.max(1))
        .zip(y.chunks_exact_mut(osz.max(1)))
    {
        max_pool_mapped(g, xp, yp, f32::MIN, |v| v)
    }
}

/// 2×2 windows at stride 2 (the windows tile the input): per output row, the two input rows'
/// maximum, then the maximum of each even and odd lane pair (`vpermt2ps`), 16 outputs per step
/// with masked loads and stores at the row's end. For the small planes of CNNs such as the
/// seed's (26 → 13, 11 → 5) the generic loop's per-window work was most of the layer.
/// `max` keeps onnxruntime's NaN rule of the generic path: `if v > m { v } else { m }`.
///
/// # Safety
/// The CPU runs AVX-512F; `g` tiles the input (`tiles(g)`, 2×2 windows); `x` and `y` hold
/// `planes` planes and their outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_pool_2x2_avx512(g: &Window2d, planes: usize, x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    // `m = if v > m { v } else { m }` is `vmaxps(v, m)`: the second operand on NaN or ties.
    let keep = |m: __m512, v: __m512| _mm512_max_ps(v, m);
    let even: [i32; 16] = std::array::from_fn(|i| 2 * i as i32);
    let odd: [i32; 16] = std::array::from_fn(|i| 2 * i as i32 + 1);
    // SAFETY: plain loads of two local arrays.
    let (even, odd) = unsafe {
        (
            _mm512_loadu_si512(even.as_ptr().cast()),
            _mm512_loadu_si512(odd.as_ptr().cast()),
        )
    };
    let (isz, osz, ow) = (g.in_size(), g.out_size(), g.ow);
    // One output row: `n ≤ 16` outputs from `j`, i.e. input lanes 2j .. 2j + 2n of two rows,
    // in two vectors of 16 each.
    let row = |r0: &[f32], r1: &[f32], out: &mut [f32], j: usize| {
        let n = (ow - j).min(16);
        let (na, nb) = ((2 * n).min(16), (2 * n).saturating_sub(16));
        let (ka, kb) = (
            (((1u32 << na) - 1) & 0xffff) as u16,
            ((1u32 << nb) - 1) as u16,
        );
        let out_k = (((1u32 << n) - 1) & 0xffff) as u16;
        // SAFETY: the masks keep every access inside rows r0, r1 (2·ow floats) and `out`
        // (ow floats); AVX-512F by the caller's contract.
        unsafe {
            let a0 = _mm512_maskz_loadu_ps(ka, r0.as_ptr().add(2 * j));
            let a1 = _mm512_maskz_loadu_ps(ka, r1.as_ptr().add(2 * j));
            let b0 = _mm512_maskz_loadu_ps(kb, r0.as_ptr().add(2 * j + 16));
            let b1 = _mm512_maskz_loadu_ps(kb, r1.as_ptr().add(2 * j + 16));
            // Window (a, b) in the order the generic path visits it: row 0 then row 1,
            // left tap then right.
            let (ev0, od0) = (
                _mm512_permutex2var_ps(a0, even, b0),
                _mm512_permutex2var_ps(a0, odd, b0),
            );
            let (ev1, od1) = (
                _mm512_permutex2var_ps(a1, even, b1),
                _mm512_permutex2var_ps(a1, odd, b1),
            );
            let m = keep(_mm512_set1_ps(f32::MIN), ev0);
            let m = keep(m, od0);
            let m = keep(m, ev1);
            let m = keep(m, od1);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(j), out_k, m);
        }
    };
    // Plane by plane and row by row (no division per row).
    for (xp, yp) in x
        .chunks_exact(isz)
        .zip(y.chunks_exact_mut(osz))
        .take(planes)
    {
        for (oy, out) in yp.chunks_exact_mut(ow).enumerate() {
            let r0 = &xp[2 * oy * g.iw..][..2 * ow];
            let r1 = &xp[(2 * oy + 1) * g.iw..][..2 * ow];
            let mut j = 0;
            while j < ow {
                row(r0, r1, out, j);
                j += 16;
            }
        }
    }
}

/// The max pool behind [`max_pool`] and [`max_pool_u8`]: inputs pass through `map` before the
/// comparison (the byte domain's xor); windows with no input tap give `lowest`.
/// `m = if v > m { v } else { m }` skips NaNs (as onnxruntime does) and compiles to `maxps`.
#[inline(always)]
fn max_pool_mapped<T: Copy + PartialOrd>(
    g: &Window2d,
    x: &[T],
    y: &mut [T],
    lowest: T,
    map: impl Fn(T) -> T + Copy,
) {
    let x = &x[..g.in_size()];
    if tiles(g) {
        match g.kw {
            2 => return max_pool_tiled::<T, 2>(g, x, y, lowest, map),
            3 => return max_pool_tiled::<T, 3>(g, x, y, lowest, map),
            _ => {}
        }
    }
    // Row by row and tap by tap: each tap is a run of outputs reading one input row at a
    // fixed stride, so the inner loop has no window bookkeeping.
    let keep = |o: &mut T, v: T| {
        let v = map(v);
        *o = if v > *o { v } else { *o };
    };
    // Rows split into even and odd elements for stride 2 (see `stride2_taps`), on the stack
    // only then.
    let mut split = if g.sw == 2 && g.iw <= SPLIT_ROW_MAX {
        Some([lowest; SPLIT_ROW_MAX])
    } else {
        None
    };
    for (oy, out) in y[..g.out_size()].chunks_exact_mut(g.ow).enumerate() {
        out.fill(lowest);
        let ys = oy as isize * g.sh as isize - g.pt as isize;
        let (ylo, yhi) = valid_taps(ys, g.dh, g.kh, g.ih);
        for ki in ylo..yhi {
            let row = &x[(ys + (ki * g.dh) as isize) as usize * g.iw..][..g.iw];
            if let Some(split) = split.as_mut() {
                stride2_taps(g, row, out, split, keep);
                continue;
            }
            for kj in 0..g.kw {
                let (xlo, xhi) = valid_outputs(g.ow, g.sw, kj * g.dw, g.pl, g.iw);
                if xlo == xhi {
                    continue;
                }
                let ix0 = xlo * g.sw + kj * g.dw - g.pl;
                let dst = &mut out[xlo..xhi];
                if g.sw == 1 {
                    let src = &row[ix0..ix0 + (xhi - xlo)];
                    dst.iter_mut().zip(src).for_each(|(o, v)| keep(o, *v));
                } else {
                    let src = row[ix0..].iter().step_by(g.sw);
                    dst.iter_mut().zip(src).for_each(|(o, v)| keep(o, *v));
                }
            }
        }
    }
}

/// Widest input row [`stride2_taps`] splits on the stack.
const SPLIT_ROW_MAX: usize = 1024;

/// One input row's taps into a row of outputs at stride 2, in [`max_pool_mapped`]'s order (tap by
/// tap, each over the run of outputs it reaches): the row is first split into its even and odd
/// elements, so each tap reads a contiguous run (the loop vectorises) instead of every second
/// element. ResNet's 3×3 stride-2 stem pool: 3.2 → 1.9 ns an output in f32, 5.3 → 2.8 in bytes.
#[inline(always)]
fn stride2_taps<T: Copy>(
    g: &Window2d,
    row: &[T],
    out: &mut [T],
    split: &mut [T; SPLIT_ROW_MAX],
    keep: impl Fn(&mut T, T),
) {
    let half = row.len().div_ceil(2);
    let (even, odd) = split.split_at_mut(SPLIT_ROW_MAX / 2);
    let pairs = row.chunks_exact(2);
    if let [last] = pairs.remainder() {
        even[half - 1] = *last;
    }
    for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
        *e = p[0];
        *o = p[1];
    }
    // (With an odd width the last odd element is stale, and no tap reads it.)
    let (even, odd) = (&even[..half], &odd[..half]);
    for kj in 0..g.kw {
        let (xlo, xhi) = valid_outputs(g.ow, g.sw, kj * g.dw, g.pl, g.iw);
        if xlo == xhi {
            continue;
        }
        let ix0 = xlo * 2 + kj * g.dw - g.pl;
        let src = if ix0.is_multiple_of(2) {
            &even[ix0 / 2..]
        } else {
            &odd[ix0 / 2..]
        };
        out[xlo..xhi]
            .iter_mut()
            .zip(&src[..xhi - xlo])
            .for_each(|(o, v)| keep(o, *v));
    }
}

/// [`max_pool_mapped`] where the windows tile the input without padding or overlap (`K × K`,
/// stride `K`, all inside): fixed-width window rows that LLVM vectorises.
#[inline(always)]
fn max_pool_tiled<T: Copy + PartialOrd, const K: usize>(
    g: &Window2d,
    x: &[T],
    y: &mut [T],
    lowest: T,
    map: impl Fn(T) -> T,
) {
    let keep = |m: T, v: T| {
        let v = map(v);
        if v > m {
            v
        } else {
            m
        }
    };
    for (oy, out) in y[..g.out_size()].chunks_exact_mut(g.ow).enumerate() {
        if g.kh == K {
            // Square windows: one pass per output row with the whole window in registers,
            // each output written once instead of once per window row (2× on the seed CNN's
            // 2×2 pools).
            let rows: [&[T]; K] =
                std::array::from_fn(|ki| &x[(oy * g.sh + ki) * g.iw..][..g.ow * K]);
            for (j, o) in out.iter_mut().enumerate() {
                let mut m = lowest;
                for row in &rows {
                    for &v in &row[j * K..j * K + K] {
                        m = keep(m, v);
                    }
                }
                *o = m;
            }
            continue;
        }
        out.fill(lowest);
        for ki in 0..g.kh {
            let row = &x[(oy * g.sh + ki) * g.iw..][..g.ow * K];
            for (m, w) in out.iter_mut().zip(row.chunks_exact(K)) {
                for &v in w {
                    *m = keep(*m, v);
                }
            }
        }
    }
}

/// Whether `g`'s windows tile the input: `K × K`, stride `K`, unpadded, all inside.
fn tiles(g: &Window2d) -> bool {
    g.pt == 0
        && g.pl == 0
        && (g.dh, g.dw) == (1, 1)
        && g.kh == g.sh
        && g.kw == g.sw
        && g.oh * g.sh <= g.ih
        && g.ow * g.sw <= g.iw
}

/// Max over the taps of each window of a byte plane, compared as `byte ^ xor` (the u8 domain
/// of a u8 or i8 tensor) and written in that domain. Every window must hold at least one
/// input tap ([`windows_all_nonempty`]); a window in the padding only would read 0.
pub fn max_pool_u8(g: &Window2d, x: &[u8], xor: u8, y: &mut [u8]) {
    // 2×2 windows tiling the input, with the plane and its output in `x` and `y`.
    let tiled_2x2 = tiles(g)
        && (g.kh, g.kw) == (2, 2)
        && g.out_size() > 0
        && x.len() >= g.in_size()
        && y.len() >= g.out_size();
    #[cfg(target_arch = "x86_64")]
    if tiled_2x2
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        // SAFETY: AVX-512F/BW/VL were detected; `tiled_2x2` holds.
        return unsafe { max_pool_2x2_u8_avx512(g, x, xor, y) };
    }
    #[cfg(target_arch = "aarch64")]
    if tiled_2x2 {
        return max_pool_2x2_u8_neon(g, x, xor, y);
    }
    if g.sw == 2 && g.iw <= SPLIT_ROW_MAX && windows_all_nonempty(g) {
        return max_pool_u8_stride2(g, x, xor, y);
    }
    max_pool_mapped(g, x, y, 0, |v| v ^ xor)
}

/// [`max_pool_u8`] at stride 2 (padded or overlapping windows, rows up to [`SPLIT_ROW_MAX`]):
/// bytes have no NaN or signed zero, so the window's maximum is taken in any order — first the
/// maximum of its valid input rows (one contiguous pass per row), then that row's taps split into
/// even and odd runs once ([`stride2_taps`]): one split per output row instead of one per window
/// row. Every window must hold an input tap.
fn max_pool_u8_stride2(g: &Window2d, x: &[u8], xor: u8, y: &mut [u8]) {
    let x = &x[..g.in_size()];
    let mut rows = [0u8; SPLIT_ROW_MAX];
    let mut split = [0u8; SPLIT_ROW_MAX];
    let keep = |o: &mut u8, v: u8| *o = (*o).max(v);
    for (oy, out) in y[..g.out_size()].chunks_exact_mut(g.ow).enumerate() {
        let ys = oy as isize * g.sh as isize - g.pt as isize;
        let (ylo, yhi) = valid_taps(ys, g.dh, g.kh, g.ih);
        let acc = &mut rows[..g.iw];
        for (n, ki) in (ylo..yhi).enumerate() {
            let row = &x[(ys + (ki * g.dh) as isize) as usize * g.iw..][..g.iw];
            if n == 0 {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a = v ^ xor);
            } else {
                acc.iter_mut()
                    .zip(row)
                    .for_each(|(a, &v)| *a = (*a).max(v ^ xor));
            }
        }
        out.fill(0);
        stride2_taps(g, acc, out, &mut split, keep);
    }
}

/// [`max_pool_u8`] over 2×2 windows at stride 2 on NEON: 16 outputs a step, each input row's
/// 32 bytes split into even and odd taps by `vld2q_u8`, the four maxima in the u8 domain; the
/// row's tail by the same arithmetic one output at a time. `g` must tile the input with 2×2
/// windows; `x` and `y` hold the plane and its output.
#[cfg(target_arch = "aarch64")]
fn max_pool_2x2_u8_neon(g: &Window2d, x: &[u8], xor: u8, y: &mut [u8]) {
    use std::arch::aarch64::*;
    let ow = g.ow;
    for (oy, out) in y[..g.out_size()].chunks_exact_mut(ow.max(1)).enumerate() {
        let r0 = &x[2 * oy * g.iw..][..2 * ow];
        let r1 = &x[(2 * oy + 1) * g.iw..][..2 * ow];
        let mut j = 0;
        while j + 16 <= ow {
            // SAFETY: NEON is part of aarch64; bytes 2j .. 2j + 32 of each row are inside
            // it (2·ow long) and outputs j .. j + 16 inside `out` (j + 16 ≤ ow).
            unsafe {
                let flip = vdupq_n_u8(xor);
                let a = vld2q_u8(r0.as_ptr().add(2 * j));
                let b = vld2q_u8(r1.as_ptr().add(2 * j));
                let top = vmaxq_u8(veorq_u8(a.0, flip), veorq_u8(a.1, flip));
                let bottom = vmaxq_u8(veorq_u8(b.0, flip), veorq_u8(b.1, flip));
                vst1q_u8(out.as_mut_ptr().add(j), vmaxq_u8(top, bottom));
            }
            j += 16;
        }
        for (k, o) in out.iter_mut().enumerate().skip(j) {
            let t = (r0[2 * k] ^ xor).max(r0[2 * k + 1] ^ xor);
            *o = t.max((r1[2 * k] ^ xor).max(r1[2 * k + 1] ^ xor));
        }
    }
}

/// [`max_pool_u8`] over 2×2 windows at stride 2 (the windows tile the input): per output row,
/// 32 outputs a step — the two input rows' 64 bytes each, xored into the u8 domain, their
/// byte maximum, then each (even, odd) pair's maximum as the two bytes of a 16-bit lane, packed
/// back to bytes (`vpmovwb`). Masked loads and stores at the row's end. The generic loop's
/// per-window work made the int8 seed CNN's pools 9× slower than its f32 ones.
///
/// # Safety
/// The CPU runs AVX-512F/BW/VL; `g` tiles the input with 2×2 windows; `x` holds the input
/// plane and `y` its output plane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn max_pool_2x2_u8_avx512(g: &Window2d, x: &[u8], xor: u8, y: &mut [u8]) {
    use std::arch::x86_64::*;
    let ow = g.ow;
    let flip = _mm512_set1_epi8(xor as i8);
    let low = _mm512_set1_epi16(0xff);
    for (oy, out) in y[..g.out_size()].chunks_exact_mut(ow).enumerate() {
        let r0 = &x[2 * oy * g.iw..][..2 * ow];
        let r1 = &x[(2 * oy + 1) * g.iw..][..2 * ow];
        let mut j = 0;
        while j < ow {
            let n = (ow - j).min(32);
            let load: __mmask64 = if n == 32 { !0 } else { (1u64 << (2 * n)) - 1 };
            let store: __mmask32 = if n == 32 { !0 } else { (1u32 << n) - 1 };
            // SAFETY: the masks keep every access inside rows r0, r1 (2·ow bytes) and `out`
            // (ow bytes); the CPU features by the caller's contract.
            unsafe {
                let a = _mm512_xor_si512(
                    _mm512_maskz_loadu_epi8(load, r0.as_ptr().add(2 * j).cast()),
                    flip,
                );
                let b = _mm512_xor_si512(
                    _mm512_maskz_loadu_epi8(load, r1.as_ptr().add(2 * j).cast()),
                    flip,
                );
                let v = _mm512_max_epu8(a, b);
                let m = _mm512_max_epu16(_mm512_and_si512(v, low), _mm512_srli_epi16::<8>(v));
                _mm256_mask_storeu_epi8(
                    out.as_mut_ptr().add(j).cast(),
                    store,
                    _mm512_cvtepi16_epi8(m),
                );
            }
            j += 32;
        }
    }
}

/// Whether every output window of `g` reads at least one input tap (none lies wholly in the
/// padding or past a ceil-mode edge).
pub fn windows_all_nonempty(g: &Window2d) -> bool {
    let rows = (0..g.oh).all(|oy| {
        let (lo, hi) = valid_taps(
            oy as isize * g.sh as isize - g.pt as isize,
            g.dh,
            g.kh,
            g.ih,
        );
        lo < hi
    });
    let cols = (0..g.ow).all(|ox| {
        let (lo, hi) = valid_taps(
            ox as isize * g.sw as isize - g.pl as isize,
            g.dw,
            g.kw,
            g.iw,
        );
        lo < hi
    });
    rows && cols
}

/// Mean of each window. With `count_include_pad` the divisor counts the taps inside the padded
/// input (`-pad_begin .. len + pad_end`), so a ceil-mode overhang past the end padding is not
/// counted; without it, only the taps inside the input. A window with no input tap gives 0.
pub fn avg_pool(g: &Window2d, count_include_pad: bool, x: &[f32], y: &mut [f32]) {
    let x = &x[..g.in_size()];
    for (oy, out) in y[..g.out_size()].chunks_exact_mut(g.ow).enumerate() {
        let ys = oy as isize * g.sh as isize - g.pt as isize;
        let (ylo, yhi) = valid_taps(ys, g.dh, g.kh, g.ih);
        let ypad = valid_taps(ys + g.pt as isize, g.dh, g.kh, g.ih + g.pt + g.pb);
        for (ox, o) in out.iter_mut().enumerate() {
            let xs = ox as isize * g.sw as isize - g.pl as isize;
            let (xlo, xhi) = valid_taps(xs, g.dw, g.kw, g.iw);
            let mut sum = 0.0f32;
            for ki in ylo..yhi {
                let row = &x[(ys + (ki * g.dh) as isize) as usize * g.iw..][..g.iw];
                for kj in xlo..xhi {
                    sum += row[(xs + (kj * g.dw) as isize) as usize];
                }
            }
            let inside = (yhi - ylo) * (xhi - xlo);
            *o = if inside == 0 {
                0.0
            } else if count_include_pad {
                let xpad = valid_taps(xs + g.pl as isize, g.dw, g.kw, g.iw + g.pl + g.pr);
                sum / ((ypad.1 - ypad.0) * (xpad.1 - xpad.0)) as f32
            } else {
                sum / inside as f32
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(iw: usize, kw: usize, sw: usize, pl: usize, pr: usize, ow: usize) -> Window2d {
        Window2d {
            ih: 1,
            iw,
            kh: 1,
            kw,
            sh: 1,
            sw,
            dh: 1,
            dw: 1,
            pt: 0,
            pl,
            pb: 0,
            pr,
            oh: 1,
            ow,
        }
    }

    /// The 2×2 stride-2 path (AVX-512 where this CPU has it) over a run of planes against the
    /// generic loop, bit for bit: widths below, at and past 16 outputs, odd input edges left out, NaNs kept out
    /// as the generic rule does, and signed zeros in the order the generic path visits them.
    /// `k × k` windows at stride `s`, dilation `d`, padding `pad` (begin, end) on both axes, with
    /// the given output size.
    fn square(
        (ih, iw): (usize, usize),
        k: usize,
        s: usize,
        d: usize,
        pad: (usize, usize),
        (oh, ow): (usize, usize),
    ) -> Window2d {
        Window2d {
            ih,
            iw,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            dh: d,
            dw: d,
            pt: pad.0,
            pl: pad.0,
            pb: pad.1,
            pr: pad.1,
            oh,
            ow,
        }
    }

    #[test]
    fn tiled_2x2_matches_the_generic_loop() {
        for (ih, iw) in [
            (1, 2),
            (2, 1),
            (2, 2),
            (5, 7),
            (26, 26),
            (11, 11),
            (8, 33),
            (4, 64),
            (6, 70),
        ] {
            let (oh, ow) = (ih / 2, iw / 2);
            let g = square((ih, iw), 2, 2, 1, (0, 0), (oh, ow));
            // Three planes: one call over the run, against the generic loop plane by plane.
            let planes = 3;
            let x: Vec<f32> = (0..planes * ih * iw)
                .map(|i| match i % 11 {
                    3 => f32::NAN,
                    5 => -0.0,
                    7 => 0.0,
                    _ => ((i * 7919) % 97) as f32 - 48.0,
                })
                .collect();
            let mut want = vec![1.0; planes * oh * ow];
            let mut got = vec![2.0; planes * oh * ow];
            let osz = (oh * ow).max(1);
            for (xp, yp) in x.chunks_exact(ih * iw).zip(want.chunks_exact_mut(osz)) {
                max_pool_mapped(&g, xp, yp, f32::MIN, |v| v);
            }
            max_pool_planes(&g, planes, &x, &mut got);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{ih}x{iw}");
        }
    }

    /// The byte 2×2 stride-2 path (AVX-512BW where this CPU has it, NEON on aarch64) against
    /// the generic loop:
    /// widths below, at and past 32 outputs, odd input edges left out, u8 and i8 (xor 0x80)
    /// domains.
    #[test]
    fn tiled_2x2_bytes_match_the_generic_loop() {
        for (ih, iw) in [
            (2, 2),
            (5, 7),
            (26, 26),
            (11, 11),
            (4, 64),
            (3, 65),
            (6, 130),
        ] {
            let (oh, ow) = (ih / 2, iw / 2);
            let g = square((ih, iw), 2, 2, 1, (0, 0), (oh, ow));
            let x: Vec<u8> = (0..ih * iw).map(|i| ((i * 7919) % 251) as u8).collect();
            for xor in [0u8, 0x80] {
                let mut want = vec![1u8; oh * ow];
                let mut got = vec![2u8; oh * ow];
                max_pool_mapped(&g, &x, &mut want, 0, |v| v ^ xor);
                max_pool_u8(&g, &x, xor, &mut got);
                assert_eq!(got, want, "{ih}x{iw} xor {xor:#x}");
            }
        }
    }

    /// Stride-2 windows (split rows) against each window visited in row-major order, bit for
    /// bit: 3×3 padded (ResNet's stem), 3×3 unpadded, 2×2 padded, dilated, a ceil overhang;
    /// NaNs skipped and signed zeros kept in the visiting order; bytes too.
    #[test]
    fn stride_2_windows_match_the_window_definition() {
        // (ih, iw, k, pad begin, pad end, dilation)
        for (ih, iw, k, pb, pe, d) in [
            (9, 9, 3, 1, 1, 1),
            (8, 11, 3, 0, 0, 1),
            (7, 7, 2, 1, 1, 1),
            (10, 13, 3, 1, 1, 2),
            (6, 8, 3, 1, 2, 1),
        ] {
            let out = |len: usize| (len + pb + pe - d * (k - 1) - 1) / 2 + 1;
            let (oh, ow) = (out(ih), out(iw));
            let g = square((ih, iw), k, 2, d, (pb, pe), (oh, ow));
            let x: Vec<f32> = (0..ih * iw)
                .map(|i| match i % 13 {
                    3 => f32::NAN,
                    5 => -0.0,
                    7 => 0.0,
                    _ => ((i * 7919) % 97) as f32 - 60.0,
                })
                .collect();
            let mut want = Vec::new();
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut m = f32::MIN;
                    for ki in 0..k {
                        for kj in 0..k {
                            let iy = (2 * oy + d * ki) as isize - pb as isize;
                            let ix = (2 * ox + d * kj) as isize - pb as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < ih && (ix as usize) < iw {
                                let v = x[iy as usize * iw + ix as usize];
                                m = if v > m { v } else { m };
                            }
                        }
                    }
                    want.push(m);
                }
            }
            let mut got = vec![1.0; oh * ow];
            max_pool(&g, &x, &mut got);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{ih}x{iw} k{k} pad {pb}/{pe} d{d}");
            let xb: Vec<u8> = (0..ih * iw).map(|i| ((i * 7919) % 251) as u8).collect();
            let mut gotb = vec![1u8; oh * ow];
            let mut wantb = vec![2u8; oh * ow];
            max_pool_u8(&g, &xb, 0x80, &mut gotb);
            max_pool_mapped(&g, &xb, &mut wantb, 0, |v| v ^ 0x80);
            let xf: Vec<f32> = xb.iter().map(|&b| (b ^ 0x80) as f32).collect();
            let mut viaf = vec![0.0; oh * ow];
            max_pool(&g, &xf, &mut viaf);
            let viaf: Vec<u8> = viaf.iter().map(|&v| v as u8).collect();
            assert_eq!(gotb, viaf, "bytes {ih}x{iw} k{k}");
            assert_eq!(gotb, wantb, "bytes {ih}x{iw} k{k}");
        }
    }

    #[test]
    fn ceil_mode_overhang_is_not_counted_as_padding() {
        // Input 5, kernel 2, stride 2, pads 1/0, ceil mode: windows [-1,0], [1,2], [3,4];
        // with pad_end 0 and input 4 the last window [3,4] overhangs by one.
        let x = [1.0, 2.0, 3.0, 4.0];
        let g = line(4, 2, 2, 1, 0, 3);
        let mut y = [0.0; 3];
        avg_pool(&g, true, &x, &mut y);
        assert_eq!(y, [0.5, 2.5, 4.0]);
        avg_pool(&g, false, &x, &mut y);
        assert_eq!(y, [1.0, 2.5, 4.0]);
        max_pool(&g, &x, &mut y);
        assert_eq!(y, [1.0, 3.0, 4.0]);
    }
}

//! Sliding-window loops for convolutions: im2col, its adjoint col2im, and a direct depthwise
//! convolution (per plane here, blocked across channels in [`DepthwisePlan`]). Single images, NCHW
//! planes; 1-D is a 2-D window of height 1.

pub mod depthwise;
pub mod direct;
mod gather;
pub mod winograd;

pub use depthwise::{DepthwisePlan, Planes, RowSink};
pub use direct::DirectConv;
pub use winograd::Winograd;

use crate::movement::copy_short;

/// Geometry of a 2-D sliding window over one `ih × iw` plane producing an `oh × ow` plane.
/// Output position `o` with tap `k` reads input `o·stride + k·dilation − pad_begin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window2d {
    pub ih: usize,
    pub iw: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Begin paddings (top, left).
    pub pt: usize,
    pub pl: usize,
    /// End paddings (bottom, right); only pooling's count-include-pad divisor reads them.
    pub pb: usize,
    pub pr: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Window2d {
    /// A window from per-axis lists of length 1 (a 1-D window, height 1) or 2, in ONNX order
    /// (`pads = [begins.., ends..]`). `None` for any other rank.
    #[allow(clippy::too_many_arguments)]
    pub fn from_axes(
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
        pads: &[usize],
        output: &[usize],
    ) -> Option<Window2d> {
        match kernel.len() {
            1 => Some(Window2d {
                ih: 1,
                iw: input[0],
                kh: 1,
                kw: kernel[0],
                sh: 1,
                sw: strides[0],
                dh: 1,
                dw: dilations[0],
                pt: 0,
                pl: pads[0],
                pb: 0,
                pr: pads[1],
                oh: 1,
                ow: output[0],
            }),
            2 => Some(Window2d {
                ih: input[0],
                iw: input[1],
                kh: kernel[0],
                kw: kernel[1],
                sh: strides[0],
                sw: strides[1],
                dh: dilations[0],
                dw: dilations[1],
                pt: pads[0],
                pl: pads[1],
                pb: pads[2],
                pr: pads[3],
                oh: output[0],
                ow: output[1],
            }),
            _ => None,
        }
    }

    pub fn in_size(&self) -> usize {
        self.ih * self.iw
    }
    pub fn out_size(&self) -> usize {
        self.oh * self.ow
    }
    pub fn taps(&self) -> usize {
        self.kh * self.kw
    }
}

/// Outputs `[lo, hi)` among `0..out` whose tap at offset `off` (= k·dilation) reads inside
/// `0..len` of an input padded by `pad` at the start: `pad ≤ o·stride + off < pad + len`.
#[inline]
pub fn valid_outputs(
    out: usize,
    stride: usize,
    off: usize,
    pad: usize,
    len: usize,
) -> (usize, usize) {
    let lo = if pad > off {
        (pad - off).div_ceil(stride)
    } else {
        0
    };
    let hi = if pad + len > off {
        (pad + len - off).div_ceil(stride).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Taps `[lo, hi)` among `0..k` of a window starting at `start` (may be negative) with
/// `dilation` that fall inside `0..len`.
#[inline]
pub fn valid_taps(start: isize, dilation: usize, k: usize, len: usize) -> (usize, usize) {
    let d = dilation as isize;
    let lo = if start < 0 {
        ((-start + d - 1) / d) as usize
    } else {
        0
    };
    let hi = if start >= len as isize {
        0
    } else {
        (((len as isize - start + d - 1) / d) as usize).min(k)
    };
    (lo.min(hi), hi)
}

/// Unfolds `channels` planes of `x` (each `ih × iw`) into `col`, a row-major
/// `(channels·kh·kw) × (oh·ow)` matrix whose row `(c·kh + i)·kw + j` holds tap (i, j) of
/// channel c for every output position (zero where the tap reads padding).
pub fn im2col(g: &Window2d, channels: usize, x: &[f32], col: &mut [f32]) {
    im2col_ld(g, channels, x, col, g.out_size(), 0);
}

/// [`im2col`] into a wider matrix: row r of the unfolded image goes to
/// `col[r·ld + at .. r·ld + at + oh·ow]`, so several images can sit side by side.
pub fn im2col_ld(g: &Window2d, channels: usize, x: &[f32], col: &mut [f32], ld: usize, at: usize) {
    unfold(g, channels, x, col, ld, at, 0.0);
}

/// Rows `rows` of [`im2col`]'s matrix into `col` (row `r` at `col[(r − rows.start)·oh·ow..]`),
/// so that threads can unfold one large image side by side, each into its own run of rows.
pub fn im2col_rows(
    g: &Window2d,
    channels: usize,
    x: &[f32],
    col: &mut [f32],
    rows: std::ops::Range<usize>,
) {
    let osz = g.out_size();
    assert!(
        rows.end <= channels * g.taps(),
        "im2col_rows: rows past the matrix"
    );
    if rows.is_empty() || osz == 0 {
        return;
    }
    let col = &mut col[..rows.len() * osz];
    unfold_rows(g, channels, x, col, osz, 0, 0.0, rows);
}

/// [`im2col_ld`] of `images` images `stride` floats apart in `x`, side by side from column 0
/// (image i at `i·oh·ow`). Small planes are unfolded a tap row of every image at a time, so
/// each row of `col` is written in order (an image at a time writes a few floats into each of
/// hundreds of rows, which misses the cache on every row).
pub fn im2col_images(
    g: &Window2d,
    channels: usize,
    x: &[f32],
    stride: usize,
    images: usize,
    col: &mut [f32],
    ld: usize,
) {
    let osz = g.out_size();
    assert!(images * osz <= ld, "im2col_images: columns past the row");
    if channels * g.taps() == 0
        || osz == 0
        || gather::unfold_images(g, channels, x, (stride, images), col, ld, SMALL_PLANE)
        || unfold_small(g, channels, x, (stride, images), col, ld, 0, 0.0)
    {
        return;
    }
    for i in 0..images {
        unfold(g, channels, &x[i * stride..], col, ld, i * osz, 0.0);
    }
}

/// [`im2col`] of a byte tensor (the int8 path), with `pad` where a tap reads padding (the raw
/// byte of the zero point).
pub fn im2col_u8(g: &Window2d, channels: usize, x: &[u8], col: &mut [u8], pad: u8) {
    unfold(g, channels, x, col, g.out_size(), 0, pad);
}

/// [`im2col_u8`] into a wider matrix, as [`im2col_ld`].
pub fn im2col_u8_ld(
    g: &Window2d,
    channels: usize,
    x: &[u8],
    col: &mut [u8],
    ld: usize,
    at: usize,
    pad: u8,
) {
    unfold(g, channels, x, col, ld, at, pad);
}

/// `dst.fill(v)` without a library call for short runs, as [`copy_short`].
#[inline(always)]
fn fill_short<T: Copy>(dst: &mut [T], v: T) {
    if dst.len() > 64 {
        return dst.fill(v);
    }
    let mut d = dst.chunks_exact_mut(8);
    for d in &mut d {
        let d: &mut [T; 8] = d.try_into().expect("chunk of 8");
        *d = [v; 8];
    }
    for d in d.into_remainder() {
        *d = v;
    }
}

/// An element the unfolding copies: f32 or a byte.
trait Elem: Copy {
    /// `dst[i] = src[2i]` for every i of `dst` (`src` holds `2·len − 1` elements at least).
    #[inline(always)]
    fn every_other(dst: &mut [Self], src: &[Self]) {
        every_other_pairs(dst, src)
    }
}

impl Elem for f32 {}

impl Elem for u8 {
    #[inline(always)]
    fn every_other(dst: &mut [u8], src: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512bw") {
            // SAFETY: AVX-512BW is present.
            return unsafe { every_other_byte_avx512(dst, src) };
        }
        every_other_pairs(dst, src)
    }
}

/// [`Elem::every_other`] through fixed-size pairs, which vectorises (a `step_by` walk does
/// not); the last element may have no partner.
#[inline(always)]
fn every_other_pairs<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    for (o, p) in dst[..n - 1]
        .iter_mut()
        .zip(src[..2 * (n - 1)].chunks_exact(2))
    {
        *o = p[0];
    }
    dst[n - 1] = src[2 * (n - 1)];
}

/// [`Elem::every_other`] for bytes: 32 outputs per 64-byte load, the even bytes taken by
/// narrowing each 16-bit word to its low byte (`vpmovwb`); the tail by masked loads and
/// stores (a stride-2 first layer's unfolding: the int8 stem).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn every_other_byte_avx512(dst: &mut [u8], src: &[u8]) {
    use std::arch::x86_64::*;
    let n = dst.len();
    assert!(
        n == 0 || src.len() > 2 * (n - 1),
        "every_other: source too short"
    );
    let mut i = 0;
    while i < n {
        let m = 32.min(n - i);
        // Source bytes 2i .. 2i + 2m − 1 (the last odd one may lie past `src`: masked off).
        let avail = (src.len() - 2 * i).min(2 * m);
        let mask: __mmask64 = if avail >= 64 { !0 } else { (1u64 << avail) - 1 };
        // SAFETY: only the `avail` bytes from 2i, inside `src`, are loaded; the `m` bytes
        // stored from i lie inside `dst`.
        let v = _mm512_maskz_loadu_epi8(mask, src.as_ptr().add(2 * i) as *const i8);
        let even = _mm512_cvtepi16_epi8(v);
        // (The 512-bit masked store: the 256-bit form needs AVX-512VL.)
        _mm512_mask_storeu_epi8(
            dst.as_mut_ptr().add(i) as *mut i8,
            (1u64 << m) - 1,
            _mm512_castsi256_si512(even),
        );
        i += m;
    }
}

/// The unfolding behind the `im2col` functions, for any element type.
fn unfold<T: Elem>(
    g: &Window2d,
    channels: usize,
    x: &[T],
    col: &mut [T],
    ld: usize,
    at: usize,
    zero: T,
) {
    let osz = g.out_size();
    assert!(at + osz <= ld, "im2col_ld: columns past the row");
    let rows_n = channels * g.taps();
    if rows_n == 0 || osz == 0 {
        return;
    }
    let col = &mut col[..(rows_n - 1) * ld + at + osz];
    if unfold_small(g, channels, x, (0, 1), col, ld, at, zero) {
        return;
    }
    unfold_rows(g, channels, x, col, ld, at, zero, 0..rows_n);
}

/// Rows `rows` of [`unfold`]'s matrix (row `r` at `col[(r − rows.start)·ld + at..]`), by the
/// general loop.
#[allow(clippy::too_many_arguments)]
fn unfold_rows<T: Elem>(
    g: &Window2d,
    channels: usize,
    x: &[T],
    col: &mut [T],
    ld: usize,
    at: usize,
    zero: T,
    rows: std::ops::Range<usize>,
) {
    let (isz, osz) = (g.in_size(), g.out_size());
    let mut r = 0;
    for c in 0..channels {
        let xc = &x[c * isz..][..isz];
        for ki in 0..g.kh {
            let (ylo, yhi) = valid_outputs(g.oh, g.sh, ki * g.dh, g.pt, g.ih);
            for kj in 0..g.kw {
                r += 1;
                if !rows.contains(&(r - 1)) {
                    continue;
                }
                let (xlo, xhi) = valid_outputs(g.ow, g.sw, kj * g.dw, g.pl, g.iw);
                let start = (r - 1 - rows.start) * ld + at;
                let row = &mut col[start..start + osz];
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    if oy < ylo || oy >= yhi || xlo == xhi {
                        fill_short(out, zero);
                        continue;
                    }
                    let iy = oy * g.sh + ki * g.dh - g.pt;
                    let xrow = &xc[iy * g.iw..][..g.iw];
                    fill_short(&mut out[..xlo], zero);
                    fill_short(&mut out[xhi..], zero);
                    let ix0 = xlo * g.sw + kj * g.dw - g.pl;
                    let dst = &mut out[xlo..xhi];
                    if g.sw == 1 {
                        copy_short(dst, &xrow[ix0..ix0 + (xhi - xlo)]);
                    } else if g.sw == 2 {
                        let n = dst.len();
                        T::every_other(dst, &xrow[ix0..ix0 + 2 * n - 1]);
                    } else {
                        for (o, v) in dst.iter_mut().zip(xrow[ix0..].iter().step_by(g.sw)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// Output planes up to this many pixels unfold by gathering through an offset table.
const SMALL_PLANE: usize = 64;

/// Padded input planes up to this many elements are padded on the stack for the gather.
const SMALL_PADDED: usize = 1024;

/// [`unfold`] for small output planes, where the per-segment work of the general loop costs
/// more than the copying (a 3×3 output row is three runs of three): each channel is padded
/// once (on the stack, when it has padding), then every tap row is one gather through a
/// table of the output pixels' offsets. Returns false, doing nothing, for other planes.
#[allow(clippy::too_many_arguments)]
fn unfold_small<T: Copy>(
    g: &Window2d,
    channels: usize,
    x: &[T],
    (stride, images): (usize, usize),
    col: &mut [T],
    ld: usize,
    at: usize,
    zero: T,
) -> bool {
    let (isz, osz) = (g.in_size(), g.out_size());
    let (ph, pw) = (g.ih + g.pt + g.pb, g.iw + g.pl + g.pr);
    let psz = ph * pw;
    let padded = g.pt + g.pb + g.pl + g.pr > 0;
    if osz > SMALL_PLANE || (padded && images * psz > SMALL_PADDED) || images == 0 {
        return false;
    }
    let width = if padded { pw } else { g.iw };
    let mut offsets = [0usize; SMALL_PLANE];
    for (i, o) in offsets.iter_mut().take(osz).enumerate() {
        *o = (i / g.ow) * g.sh * width + (i % g.ow) * g.sw;
    }
    let offsets = &offsets[..osz];
    let mut buf = [zero; SMALL_PADDED];
    // Every read is at a tap's offset plus a pixel's, at most this far into a source plane.
    let reach = (g.kh - 1) * g.dh * width + (g.kw - 1) * g.dw + offsets[osz - 1];
    assert!(
        reach < if padded { psz } else { isz },
        "im2col: window past the plane"
    );
    assert!(
        x.len() >= (images - 1) * stride + channels * isz,
        "im2col: short input"
    );
    let col_rows = channels * g.taps();
    assert!(
        (col_rows - 1) * ld + at + images * osz <= col.len(),
        "im2col: short columns"
    );
    let dst = col.as_mut_ptr();
    let mut r = 0;
    for c in 0..channels {
        // Each image's plane c: its padded copy on the stack, or the plane in place.
        let (src, step) = if padded {
            let b = &mut buf[..images * psz];
            b.fill(zero);
            for (img, bp) in b.chunks_exact_mut(psz).enumerate() {
                let xc = &x[img * stride + c * isz..][..isz];
                for (iy, row) in xc.chunks_exact(g.iw).enumerate() {
                    bp[(iy + g.pt) * pw + g.pl..][..g.iw].copy_from_slice(row);
                }
            }
            (buf.as_ptr(), psz)
        } else {
            // SAFETY: plane c of image 0 starts inside `x` (asserted above).
            (unsafe { x.as_ptr().add(c * isz) }, stride)
        };
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                // One tap row of every image, written in order (the row is contiguous, the
                // reads stay in a few lines of each image), unchecked: the planes are a few
                // pixels wide, so per-element bounds checks and per-row slicing cost more than
                // the copies (Silero's 256 taps of 5 pixels).
                // SAFETY: image `img`'s plane starts `img·step` past `src` and is read at most
                // `reach` into it, inside `x` or `buf` (asserted); row r < `col_rows` and its
                // `images·osz` columns from `at` lie inside `col` (asserted).
                unsafe {
                    let tap = src.add(ki * g.dh * width + kj * g.dw);
                    let row = dst.add(r * ld + at);
                    for img in 0..images {
                        let base = tap.add(img * step);
                        let out = row.add(img * osz);
                        for (i, &off) in offsets.iter().enumerate() {
                            *out.add(i) = *base.add(off);
                        }
                    }
                }
                r += 1;
            }
        }
    }
    true
}

/// The adjoint of [`im2col`]: accumulates each column entry of `col` into the `channels` planes
/// of `img` (each `ih × iw`) that the corresponding tap reads. Entries landing in padding are
/// dropped. `img` is added to, not overwritten.
pub fn col2im(g: &Window2d, channels: usize, col: &[f32], img: &mut [f32]) {
    let (isz, osz) = (g.in_size(), g.out_size());
    let mut rows = col[..channels * g.taps() * osz].chunks_exact(osz);
    for c in 0..channels {
        let ic = &mut img[c * isz..][..isz];
        for ki in 0..g.kh {
            let (ylo, yhi) = valid_outputs(g.oh, g.sh, ki * g.dh, g.pt, g.ih);
            for kj in 0..g.kw {
                let (xlo, xhi) = valid_outputs(g.ow, g.sw, kj * g.dw, g.pl, g.iw);
                let row = rows.next().expect("col holds every tap row");
                if xlo == xhi {
                    continue;
                }
                for oy in ylo..yhi {
                    let iy = oy * g.sh + ki * g.dh - g.pt;
                    let irow = &mut ic[iy * g.iw..][..g.iw];
                    let src = &row[oy * g.ow + xlo..oy * g.ow + xhi];
                    let ix0 = xlo * g.sw + kj * g.dw - g.pl;
                    if g.sw == 1 {
                        for (o, v) in irow[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *o += *v;
                        }
                    } else {
                        for (o, v) in irow[ix0..].iter_mut().step_by(g.sw).zip(src) {
                            *o += *v;
                        }
                    }
                }
            }
        }
    }
}

/// Direct convolution of one plane `x` (`ih × iw`) with one filter `w` (`kh × kw`), plus `bias`,
/// into `y` (`oh × ow`), overwriting it: one channel of a depthwise convolution.
pub fn depthwise(g: &Window2d, x: &[f32], w: &[f32], bias: f32, y: &mut [f32]) {
    let x = &x[..g.in_size()];
    let w = &w[..g.taps()];
    let y = &mut y[..g.out_size()];
    y.fill(bias);
    for (oy, out) in y.chunks_exact_mut(g.ow).enumerate() {
        let (klo, khi) = valid_taps(
            oy as isize * g.sh as isize - g.pt as isize,
            g.dh,
            g.kh,
            g.ih,
        );
        for ki in klo..khi {
            let iy = oy * g.sh + ki * g.dh - g.pt;
            let xrow = &x[iy * g.iw..][..g.iw];
            for kj in 0..g.kw {
                let wv = w[ki * g.kw + kj];
                let (xlo, xhi) = valid_outputs(g.ow, g.sw, kj * g.dw, g.pl, g.iw);
                if xlo == xhi {
                    continue;
                }
                let ix0 = xlo * g.sw + kj * g.dw - g.pl;
                let dst = &mut out[xlo..xhi];
                if g.sw == 1 {
                    for (o, v) in dst.iter_mut().zip(&xrow[ix0..ix0 + (xhi - xlo)]) {
                        *o += wv * *v;
                    }
                } else {
                    for (o, v) in dst.iter_mut().zip(xrow[ix0..].iter().step_by(g.sw)) {
                        *o += wv * *v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(ih: usize, iw: usize, k: usize, s: usize, d: usize, p: usize) -> Window2d {
        let o = |i: usize| (i + 2 * p - d * (k - 1) - 1) / s + 1;
        Window2d {
            ih,
            iw,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            dh: d,
            dw: d,
            pt: p,
            pl: p,
            pb: p,
            pr: p,
            oh: o(ih),
            ow: o(iw),
        }
    }

    /// Reads input (iy, ix) for output (oy, ox) and tap (ki, kj), or 0 in the padding.
    fn tap(g: &Window2d, x: &[f32], oy: usize, ox: usize, ki: usize, kj: usize) -> f32 {
        let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
        let ix = (ox * g.sw + kj * g.dw) as isize - g.pl as isize;
        if iy < 0 || ix < 0 || iy >= g.ih as isize || ix >= g.iw as isize {
            0.0
        } else {
            x[iy as usize * g.iw + ix as usize]
        }
    }

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect()
    }

    /// Every other element, by the pairs loop and (bytes, AVX-512BW) by `vpmovwb`, for
    /// lengths around the 32-byte runs.
    #[test]
    fn every_other_takes_the_even_elements() {
        for n in [0usize, 1, 2, 31, 32, 33, 64, 65, 100] {
            let src: Vec<u8> = (0..(2 * n).saturating_sub(1))
                .map(|i| (i * 37 % 251) as u8)
                .collect();
            let want: Vec<u8> = (0..n).map(|i| src[2 * i]).collect();
            let mut got = vec![0u8; n];
            every_other_pairs(&mut got, &src);
            assert_eq!(got, want, "pairs, {n}");
            let mut got = vec![0u8; n];
            u8::every_other(&mut got, &src);
            assert_eq!(got, want, "bytes, {n}");
            let srcf: Vec<f32> = src.iter().map(|&v| v as f32).collect();
            let mut gotf = vec![0f32; n];
            f32::every_other(&mut gotf, &srcf);
            assert!(
                gotf.iter().zip(&want).all(|(&a, &b)| a == b as f32),
                "f32, {n}"
            );
        }
    }

    /// Bytes unfold as the f32 values do (`im2col`, checked against direct indexing below), the
    /// padding reading `pad`: stride 2 with rows of whole and partial 32-byte runs (the
    /// AVX-512 byte path where there is one), and stride 1.
    #[test]
    fn im2col_u8_matches_the_f32_unfolding() {
        for g in [
            geom(224, 224, 3, 2, 1, 1),
            geom(9, 131, 3, 2, 1, 0),
            geom(7, 67, 5, 2, 1, 2),
            geom(6, 65, 1, 2, 1, 0),
            geom(5, 6, 3, 1, 1, 1),
        ] {
            let c = 3;
            let x: Vec<u8> = (0..c * g.in_size())
                .map(|i| (i * 7919 % 251) as u8)
                .collect();
            // Read + 1 as floats, so the f32 padding (0) stands apart from every input.
            let xf: Vec<f32> = x.iter().map(|&v| v as f32 + 1.0).collect();
            let n = c * g.taps() * g.out_size();
            let (mut col, mut colf) = (vec![0u8; n], vec![f32::NAN; n]);
            im2col_u8(&g, c, &x, &mut col, 200);
            im2col(&g, c, &xf, &mut colf);
            let want: Vec<u8> = colf
                .iter()
                .map(|&v| if v == 0.0 { 200 } else { v as u8 - 1 })
                .collect();
            assert_eq!(col, want, "{g:?}");
        }
    }

    #[test]
    fn im2col_matches_direct_indexing() {
        for g in [
            geom(5, 6, 3, 1, 1, 1),
            geom(7, 5, 3, 2, 1, 0),
            geom(8, 8, 3, 2, 2, 2),
        ] {
            let c = 2;
            let x = data(c * g.in_size());
            let mut col = vec![f32::NAN; c * g.taps() * g.out_size()];
            im2col(&g, c, &x, &mut col);
            for ch in 0..c {
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        for oy in 0..g.oh {
                            for ox in 0..g.ow {
                                let row = (ch * g.kh + ki) * g.kw + kj;
                                let want = tap(&g, &x[ch * g.in_size()..], oy, ox, ki, kj);
                                assert_eq!(col[row * g.out_size() + oy * g.ow + ox], want);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn im2col_images_matches_one_image_at_a_time() {
        // Small planes with and without padding (one tap row of every image at a time), a
        // 1-D window over a long row (Silero's STFT: 256 taps, stride 128), padded planes too
        // many to pad on the stack together, and a plane too large for the small path. On
        // AVX-512 the small planes are gathered (`gather`): padding masked lane by lane
        // (stride 2 and dilation 2 too), and more columns than one offset table holds
        // (1024: 400 images of 3 pixels, 1100 of 1).
        let mut stft = geom(1, 832, 1, 1, 1, 0);
        (stft.kw, stft.sw, stft.ow) = (256, 128, 5);
        let mut enc = geom(1, 4, 1, 1, 1, 0);
        (enc.pl, enc.pr, enc.kw) = (1, 1, 3);
        let mut enc1 = enc;
        (enc1.sw, enc1.ow) = (2, 2);
        let mut enc3 = enc;
        (enc3.iw, enc3.ow) = (1, 1);
        let mut wide = enc;
        (wide.iw, wide.ow) = (3, 3);
        for (g, c, images) in [
            (geom(5, 6, 3, 1, 1, 1), 2, 3),
            (geom(7, 5, 3, 2, 1, 0), 3, 4),
            (geom(6, 7, 3, 2, 1, 1), 2, 5),
            (geom(5, 5, 3, 1, 2, 2), 2, 3),
            (stft, 1, 5),
            (enc, 3, 16),
            (enc1, 4, 7),
            (enc3, 2, 1100),
            (wide, 2, 400),
            (geom(12, 12, 3, 1, 1, 1), 2, 8),
            (geom(20, 20, 3, 1, 1, 1), 2, 2),
        ] {
            let (isz, osz, rows) = (g.in_size(), g.out_size(), c * g.taps());
            // Images 2 channels further apart than their own channels (a group of a larger
            // tensor).
            let stride = (c + 2) * isz;
            let x = data(images * stride);
            let ld = images * osz + 3;
            let mut want = vec![f32::NAN; rows * ld];
            for i in 0..images {
                im2col_ld(&g, c, &x[i * stride..], &mut want, ld, i * osz);
            }
            let mut got = vec![f32::NAN; rows * ld];
            im2col_images(&g, c, &x, stride, images, &mut got, ld);
            for r in 0..rows {
                let cols = r * ld..r * ld + images * osz;
                assert_eq!(&got[cols.clone()], &want[cols], "{g:?} row {r}");
                assert!(got[r * ld + images * osz..][..3].iter().all(|v| v.is_nan()));
            }
        }
    }

    #[test]
    fn im2col_rows_matches_the_same_rows_of_im2col() {
        for g in [
            geom(5, 6, 3, 1, 1, 1),
            geom(15, 17, 3, 2, 1, 1),
            geom(12, 12, 5, 1, 2, 2),
        ] {
            let c = 3;
            let (osz, rows) = (g.out_size(), c * g.taps());
            let x = data(c * g.in_size());
            let mut whole = vec![f32::NAN; rows * osz];
            im2col(&g, c, &x, &mut whole);
            for (r0, r1) in [(0, rows), (0, 1), (4, 13), (rows - 2, rows), (7, 7)] {
                let mut part = vec![f32::NAN; (r1 - r0) * osz + 2];
                im2col_rows(&g, c, &x, &mut part, r0..r1);
                assert_eq!(
                    &part[..(r1 - r0) * osz],
                    &whole[r0 * osz..r1 * osz],
                    "{g:?} {r0}..{r1}"
                );
                assert!(part[(r1 - r0) * osz..].iter().all(|v| v.is_nan()));
            }
        }
    }

    #[test]
    fn im2col_ld_places_images_side_by_side() {
        let g = geom(7, 5, 3, 2, 1, 1);
        let (c, osz) = (2, g.out_size());
        let rows = c * g.taps();
        let (x0, x1) = (
            data(c * g.in_size()),
            data(c * g.in_size() + 3)[3..].to_vec(),
        );
        let (mut a, mut b) = (vec![0.0; rows * osz], vec![0.0; rows * osz]);
        im2col(&g, c, &x0, &mut a);
        im2col(&g, c, &x1, &mut b);
        let ld = 2 * osz + 1;
        let mut wide = vec![f32::NAN; rows * ld];
        im2col_ld(&g, c, &x0, &mut wide, ld, 0);
        im2col_ld(&g, c, &x1, &mut wide, ld, osz);
        for r in 0..rows {
            assert_eq!(&wide[r * ld..r * ld + osz], &a[r * osz..(r + 1) * osz]);
            assert_eq!(
                &wide[r * ld + osz..r * ld + 2 * osz],
                &b[r * osz..(r + 1) * osz]
            );
            assert!(
                wide[r * ld + 2 * osz].is_nan(),
                "the column past both images is untouched"
            );
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for any x, y.
        let g = geom(6, 7, 3, 2, 2, 2);
        let c = 3;
        let x = data(c * g.in_size());
        let y: Vec<f32> = (0..c * g.taps() * g.out_size())
            .map(|i| (i % 5) as f32 - 2.0)
            .collect();
        let mut col = vec![0.0; y.len()];
        im2col(&g, c, &x, &mut col);
        let mut img = vec![0.0; x.len()];
        col2im(&g, c, &y, &mut img);
        let lhs: f32 = col.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&img).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }

    #[test]
    fn depthwise_matches_direct_sum() {
        for g in [
            geom(5, 6, 3, 1, 1, 1),
            geom(9, 7, 5, 2, 1, 2),
            geom(8, 8, 3, 1, 3, 3),
        ] {
            let x = data(g.in_size());
            let w: Vec<f32> = (0..g.taps()).map(|i| i as f32 * 0.25 - 1.0).collect();
            let mut y = vec![f32::NAN; g.out_size()];
            depthwise(&g, &x, &w, 0.5, &mut y);
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut want = 0.5;
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            want += w[ki * g.kw + kj] * tap(&g, &x, oy, ox, ki, kj);
                        }
                    }
                    assert!((y[oy * g.ow + ox] - want).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn tap_and_output_ranges() {
        assert_eq!(valid_taps(-2, 1, 3, 5), (2, 3));
        assert_eq!(valid_taps(3, 2, 3, 5), (0, 1));
        assert_eq!(valid_taps(5, 1, 3, 5), (0, 0));
        assert_eq!(valid_outputs(4, 2, 0, 1, 6), (1, 4));
        assert_eq!(valid_outputs(3, 1, 4, 0, 2), (0, 0));
    }
}

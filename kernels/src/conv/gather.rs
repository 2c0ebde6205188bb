//! im2col of small output planes by AVX-512 gathers (f32).
//!
//! Every row of the unfolded matrix (one tap of one channel) reads the same output pixels of
//! every image, shifted by the tap's offset. So one table of the pixels' offsets, for a run
//! of images side by side, serves every row: a row is then a `vgatherdps` per 16 columns from
//! the tap's base. Padding needs no padded copy of the input: each pixel's window origin is
//! kept beside its offset, and a lane whose tap falls outside the plane is masked off (left
//! zero). Silero's convolutions (planes of 1–5 pixels, 32 images, up to 387 tap rows) were
//! one scalar copy per element before, through a loop per image.

use super::Window2d;

/// Columns (images × output pixels) per table: three tables of this many `i32` on the stack.
#[cfg(target_arch = "x86_64")]
const TABLE: usize = 1024;

/// Unfolds `images` images (image i at `x[i·stride..]`, `channels` planes each) side by side
/// into `col` (row r at `col[r·ld..]`, image i's pixels from column `i·oh·ow`), as
/// [`super::im2col_images`]. Returns false, doing nothing, where the CPU has no AVX-512, the
/// output plane is larger than `max_plane` pixels, or an offset would not fit an `i32`.
pub(super) fn unfold_images(
    g: &Window2d,
    channels: usize,
    x: &[f32],
    (stride, images): (usize, usize),
    col: &mut [f32],
    ld: usize,
    max_plane: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let (isz, osz) = (g.in_size(), g.out_size());
        assert!(
            max_plane <= TABLE,
            "im2col: planes up to {TABLE} pixels only"
        );
        if osz == 0 || osz > max_plane || images == 0 || channels == 0 || g.taps() == 0 {
            return false;
        }
        if !is_x86_feature_detected!("avx512f") {
            return false;
        }
        let reach = (images - 1) * stride + channels * isz;
        let iw = g.iw as i64;
        // Window origins (and so offsets) reach one pad before the plane and past it.
        let far = (g.oh * g.sh + g.kh * g.dh + g.ow * g.sw + g.kw * g.dw + g.pt + g.pl) as i64;
        if far
            .checked_mul(iw + 1)
            .is_none_or(|far| reach as i64 + far > i32::MAX as i64)
        {
            return false;
        }
        assert!(x.len() >= reach, "im2col: short input");
        // Without padding no lane is masked: every window must lie inside the plane.
        let padded = g.pt + g.pb + g.pl + g.pr > 0;
        assert!(
            padded
                || ((g.oh - 1) * g.sh + (g.kh - 1) * g.dh < g.ih
                    && (g.ow - 1) * g.sw + (g.kw - 1) * g.dw < g.iw),
            "im2col: window past the plane"
        );
        let rows = channels * g.taps();
        assert!(
            (rows - 1) * ld + images * osz <= col.len() && images * osz <= ld,
            "im2col: short columns"
        );
        let per = TABLE / osz;
        for i0 in (0..images).step_by(per) {
            let n = per.min(images - i0);
            // SAFETY: AVX-512F is present (checked above); the images' planes lie inside
            // `x` from `i0·stride` (asserted: `reach`), and the rows' columns `i0·osz ..
            // (i0 + n)·osz` inside `col` (asserted).
            unsafe {
                avx512::unfold(
                    g,
                    channels,
                    x.as_ptr().add(i0 * stride),
                    stride,
                    n,
                    col.as_mut_ptr().add(i0 * osz),
                    ld,
                )
            };
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, channels, x, stride, images, col, ld, max_plane);
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Window2d, TABLE};
    use std::arch::x86_64::*;

    /// Unfolds `images` images (at most [`TABLE`] columns in all) into columns `0..images·osz`
    /// of `col`'s rows.
    ///
    /// # Safety
    /// AVX-512F; image i's `channels` planes are readable at `x + i·stride`; rows
    /// `0..channels·taps` of `images·osz` floats are writable at `col + r·ld`; every offset
    /// fits an `i32` (the caller checks).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn unfold(
        g: &Window2d,
        channels: usize,
        x: *const f32,
        stride: usize,
        images: usize,
        col: *mut f32,
        ld: usize,
    ) {
        let osz = g.out_size();
        let cols = images * osz;
        debug_assert!(cols <= TABLE);
        let padded = g.pt + g.pb + g.pl + g.pr > 0;
        // Per column: the offset of its window's origin (top-left tap, which may sit in the
        // padding) from the first image's plane, and that origin's row and column.
        let mut pix = [0i32; TABLE];
        let mut oy = [0i32; TABLE];
        let mut ox = [0i32; TABLE];
        for c in 0..cols {
            let (img, p) = (c / osz, c % osz);
            let y = ((p / g.ow) * g.sh) as i32 - g.pt as i32;
            let xx = ((p % g.ow) * g.sw) as i32 - g.pl as i32;
            oy[c] = y;
            ox[c] = xx;
            pix[c] = (img * stride) as i32 + y * g.iw as i32 + xx;
        }
        let (ih, iw) = (
            _mm512_set1_epi32(g.ih as i32),
            _mm512_set1_epi32(g.iw as i32),
        );
        let isz = g.in_size();
        let mut r = 0;
        for ch in 0..channels {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let (dy, dx) = ((ki * g.dh) as i32, (kj * g.dw) as i32);
                    // The tap's offset from each window origin, from plane `ch`.
                    let tap = (ch * isz) as isize + (dy * g.iw as i32 + dx) as isize;
                    let (vdy, vdx) = (_mm512_set1_epi32(dy), _mm512_set1_epi32(dx));
                    let row = col.add(r * ld);
                    let mut c = 0;
                    while c < cols {
                        let live = cols - c;
                        let mut m: __mmask16 = if live >= 16 {
                            0xffff
                        } else {
                            (1u16 << live) - 1
                        };
                        if padded {
                            // Inside the plane: 0 ≤ y + dy < ih and 0 ≤ x + dx < iw, unsigned.
                            let y = _mm512_add_epi32(
                                _mm512_loadu_si512(oy.as_ptr().add(c).cast()),
                                vdy,
                            );
                            let xx = _mm512_add_epi32(
                                _mm512_loadu_si512(ox.as_ptr().add(c).cast()),
                                vdx,
                            );
                            m &= _mm512_cmplt_epu32_mask(y, ih) & _mm512_cmplt_epu32_mask(xx, iw);
                        }
                        let idx = _mm512_loadu_si512(pix.as_ptr().add(c).cast());
                        // Masked-off lanes are not read (they may point outside `x`).
                        let v = _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            m,
                            idx,
                            x.wrapping_offset(tap).cast(),
                        );
                        if live >= 16 {
                            _mm512_storeu_ps(row.add(c), v);
                        } else {
                            _mm512_mask_storeu_ps(row.add(c), (1u16 << live) - 1, v);
                        }
                        c += 16;
                    }
                    r += 1;
                }
            }
        }
    }
}

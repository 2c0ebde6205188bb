//! Packing one panel of activations: `NR` columns (output pixels or GEMM rows) by all of k, in
//! the micro-kernel's format. Convolutions are unfolded here (im2col, one panel at a time), so
//! the full column matrix never exists.

use super::{Format, NR};
use crate::conv::Window2d;

/// Where the activations of a quantized product come from (bytes: u8, or i8 read as u8 after
/// xor 0x80).
pub enum Source<'a> {
    /// One image (one group) of a convolution: `channels` planes of `g.ih × g.iw`. Row k of the
    /// product is tap `(c, ki, kj)` in that order (the weight layout), column p output pixel p.
    Conv {
        x: &'a [u8],
        g: Window2d,
        channels: usize,
    },
    /// A row-major matrix with `ld` bytes per row: column p of the product is row p.
    Rows { x: &'a [u8], ld: usize },
    /// A stride-1 convolution read in place, on a "wide" output grid as wide as the input:
    /// row k = (c, t) of column p is `x[c·plane + taps[t] + p]` (`taps[t]` is tap t's offset
    /// `ki·dh·iw + kj·dw`). Column `oy·iw + ox` is output pixel (oy, ox) for `ox < ow`; the
    /// columns past `ow` in each row are computed and discarded by the caller. No unfolding.
    Shifted {
        x: &'a [u8],
        channels: usize,
        plane: usize,
        taps: &'a [usize],
    },
}

impl Source<'_> {
    /// Panics unless the source holds `k` rows of the product by (at least) `cols` columns.
    pub(crate) fn check(&self, k: usize, cols: usize) {
        match self {
            Source::Conv { x, g, channels } => {
                assert_eq!(
                    channels * g.kh * g.kw,
                    k,
                    "qgemm: conv taps disagree with k"
                );
                assert!(cols <= g.oh * g.ow, "qgemm: columns past the conv output");
                assert!(
                    x.len() >= channels * g.ih * g.iw,
                    "qgemm: conv input too small"
                );
            }
            Source::Shifted {
                x,
                channels,
                plane,
                taps,
            } => {
                assert_eq!(
                    channels * taps.len(),
                    k,
                    "qgemm: shifted taps disagree with k"
                );
                let last = taps.iter().max().copied().unwrap_or(0) + cols;
                assert!(
                    cols == 0 || *channels == 0 || x.len() >= (channels - 1) * plane + last,
                    "qgemm: shifted input too small"
                );
            }
            Source::Rows { x, ld } => {
                assert!(*ld >= k, "qgemm: row stride below k");
                assert!(
                    cols == 0 || x.len() >= (cols - 1) * ld + k,
                    "qgemm: rows too small"
                );
            }
        }
    }
}

/// Fills `panel` (`kg` groups × NR columns × 4 bytes) with columns `p0..p0 + np` of `src`.
/// Values are `x ^ xor`; positions in padding or past `np`/`k` get `pad`, the zero point in the
/// panel's domain. For `I16` each value is then `v − zx` (so padding, `pad == zx`, is 0).
///
/// Each group's `gs` rows of `NR` bytes are gathered first, then interleaved into the group's
/// 64 bytes with whole-row arithmetic (zero-extend, shift, or) that LLVM vectorises.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn pack_panel(
    src: &Source,
    format: Format,
    k: usize,
    kg: usize,
    p0: usize,
    np: usize,
    xor: u8,
    zx: i32,
    pad: u8,
    panel: &mut [u8],
) {
    let gs = format.group();
    let panel = &mut panel[..kg * NR * 4];
    if gs == 4 && np == NR && pack_runs(src, k, p0, xor, pad, panel) {
        return;
    }
    let mut rows = [[pad; NR]; 4];
    let mut fill = Gather::new(src, p0, np, xor, pad);
    for (g, dst) in panel.chunks_exact_mut(NR * 4).enumerate() {
        for (t, row) in rows.iter_mut().enumerate().take(gs) {
            let kk = g * gs + t;
            if kk < k {
                fill.row(kk, row);
            } else {
                // The tail of the last group (k not a multiple of the group size) meets zero
                // weights.
                *row = [pad; NR];
            }
        }
        let mut words = [0u32; NR];
        match format {
            Format::I16 => {
                for j in 0..NR {
                    let live = (j < np) as i32;
                    let lo = ((rows[0][j] as i32 - zx) * live) as u16 as u32;
                    let hi = ((rows[1][j] as i32 - zx) * live) as u16 as u32;
                    words[j] = lo | hi << 16;
                }
            }
            _ => {
                for j in 0..NR {
                    words[j] = rows[0][j] as u32
                        | (rows[1][j] as u32) << 8
                        | (rows[2][j] as u32) << 16
                        | (rows[3][j] as u32) << 24;
                }
            }
        }
        for (d, w) in dst.chunks_exact_mut(4).zip(words) {
            d.copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// [`pack_panel`] of a full panel in a 4-row format whose rows are runs of `NR` bytes in the
/// source (1×1 stride-1 convolutions, shifted sources): each group's four rows are loaded
/// whole and interleaved by byte and word unpacks (x86) or one interleaving store (NEON).
/// Returns false, doing nothing, for other sources.
#[inline(always)]
fn pack_runs(src: &Source, k: usize, p0: usize, xor: u8, pad: u8, panel: &mut [u8]) -> bool {
    // Row kk = (c, t) starts at `x[c·plane + taps[t] + p0]`.
    let (x, plane, taps): (&[u8], usize, &[usize]) = match src {
        Source::Conv { x, g, .. } if in_place(g) => (x, g.ih * g.iw, &[0]),
        Source::Shifted { x, plane, taps, .. } if !taps.is_empty() => (x, *plane, taps),
        _ => return false,
    };
    // Rows in order, (c, t) advanced without dividing. `Source::check` has bounded the
    // source: a full panel's runs lie inside it.
    let (mut c, mut t) = (0, 0);
    let mut next = || -> [u8; NR] {
        let at = c * plane + taps[t] + p0;
        t += 1;
        if t == taps.len() {
            (c, t) = (c + 1, 0);
        }
        x[at..at + NR].try_into().expect("a run of NR bytes")
    };
    for (gi, dst) in panel.chunks_exact_mut(4 * NR).enumerate() {
        let mut rows = [[pad; NR]; 4];
        for (q, row) in rows.iter_mut().enumerate() {
            if gi * 4 + q < k {
                *row = next().map(|v| v ^ xor);
            }
        }
        let dst: &mut [u8; 4 * NR] = dst.try_into().expect("a group of the panel");
        interleave4(&rows, dst);
    }
    true
}

/// Whether a convolution's product rows are its input planes themselves (1×1, stride 1, no
/// padding): row k of column p is `x[k·ih·iw + p]`.
#[inline(always)]
fn in_place(g: &Window2d) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl) == (1, 1, 1, 1, 0, 0) && (g.oh, g.ow) == (g.ih, g.iw)
}

/// `dst[4j + q] = rows[q][j]`: four rows of `NR` bytes as `NR` little-endian words.
#[inline(always)]
fn interleave4(rows: &[[u8; NR]; 4], dst: &mut [u8; 4 * NR]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86-64; every load reads 16 bytes of a row, every store
        // writes 16 bytes inside `dst` (64 bytes).
        unsafe {
            let r = |q: usize| _mm_loadu_si128(rows[q].as_ptr().cast());
            let (a, b) = (_mm_unpacklo_epi8(r(0), r(1)), _mm_unpackhi_epi8(r(0), r(1)));
            let (c, d) = (_mm_unpacklo_epi8(r(2), r(3)), _mm_unpackhi_epi8(r(2), r(3)));
            let out = dst.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(out, _mm_unpacklo_epi16(a, c));
            _mm_storeu_si128(out.add(1), _mm_unpackhi_epi16(a, c));
            _mm_storeu_si128(out.add(2), _mm_unpacklo_epi16(b, d));
            _mm_storeu_si128(out.add(3), _mm_unpackhi_epi16(b, d));
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::aarch64::*;
        // SAFETY: NEON is part of aarch64; four 16-byte loads from the rows, one 64-byte
        // interleaving store into `dst`.
        unsafe {
            let r = |q: usize| vld1q_u8(rows[q].as_ptr());
            vst4q_u8(dst.as_mut_ptr(), uint8x16x4_t(r(0), r(1), r(2), r(3)));
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    for (j, w) in dst.chunks_exact_mut(4).enumerate() {
        for (q, b) in w.iter_mut().enumerate() {
            *b = rows[q][j];
        }
    }
}

/// Reads row `kk` of the product's right operand for one panel's columns.
struct Gather<'a, 's> {
    src: &'s Source<'a>,
    p0: usize,
    np: usize,
    xor: u8,
    pad: u8,
    /// Top-left input position of each column's window (convolutions).
    oy: [isize; NR],
    ox: [isize; NR],
    direct: bool,
    /// All the panel's columns lie on one output row (their windows start `sw` apart).
    one_row: bool,
    /// The next row `kk` expected and its (channel, tap row, tap column): rows are asked for
    /// in order, so the divisions that split `kk` are done once per panel, not once per row.
    next: (usize, usize, usize, usize),
}

impl<'a, 's> Gather<'a, 's> {
    #[inline(always)]
    fn new(src: &'s Source<'a>, p0: usize, np: usize, xor: u8, pad: u8) -> Self {
        let (mut oy, mut ox, mut direct) = ([0isize; NR], [0isize; NR], false);
        if let Source::Conv { g, .. } = src {
            direct = in_place(g);
            // Window corners, for the unfolding path only (a division per column). Walked
            // row by row from one division rather than dividing for every column.
            if !direct && np > 0 {
                let (mut y, mut x) = (p0 / g.ow, p0 % g.ow);
                for j in 0..np {
                    oy[j] = (y * g.sh) as isize - g.pt as isize;
                    ox[j] = (x * g.sw) as isize - g.pl as isize;
                    x += 1;
                    if x == g.ow {
                        (y, x) = (y + 1, 0);
                    }
                }
            }
        }
        let one_row = match src {
            Source::Conv { g, .. } => !direct && np > 0 && p0 % g.ow + np <= g.ow,
            _ => false,
        };
        Gather {
            src,
            p0,
            np,
            xor,
            pad,
            oy,
            ox,
            direct,
            one_row,
            next: (0, 0, 0, 0),
        }
    }

    #[inline(always)]
    fn row(&mut self, kk: usize, row: &mut [u8; NR]) {
        let (p0, np, xor) = (self.p0, self.np, self.xor);
        *row = [self.pad; NR];
        match self.src {
            Source::Rows { x, ld } => {
                for j in 0..np {
                    row[j] = x[(p0 + j) * ld + kk] ^ xor;
                }
            }
            Source::Shifted { x, plane, taps, .. } => {
                let (c, t) = (kk / taps.len(), kk % taps.len());
                let at = c * plane + taps[t] + p0;
                for (r, v) in row[..np].iter_mut().zip(&x[at..at + np]) {
                    *r = v ^ xor;
                }
            }
            Source::Conv { x, g, .. } => {
                let isz = g.ih * g.iw;
                let (c, ki, kj) = if self.next.0 == kk {
                    (self.next.1, self.next.2, self.next.3)
                } else {
                    let taps = g.kh * g.kw;
                    let (c, t) = (kk / taps, kk % taps);
                    (c, t / g.kw, t % g.kw)
                };
                self.next = match (kj + 1 < g.kw, ki + 1 < g.kh) {
                    (true, _) => (kk + 1, c, ki, kj + 1),
                    (false, true) => (kk + 1, c, ki + 1, 0),
                    (false, false) => (kk + 1, c + 1, 0, 0),
                };
                let plane = &x[c * isz..(c + 1) * isz];
                if self.direct {
                    for (r, v) in row[..np].iter_mut().zip(&plane[p0..p0 + np]) {
                        *r = v ^ xor;
                    }
                } else if self.one_row {
                    // One input row, read at stride `sw` from the first column's window: the
                    // columns whose tap lies inside it form one run, found arithmetically.
                    let iy = self.oy[0] + (ki * g.dh) as isize;
                    if iy < 0 || iy as usize >= g.ih {
                        return;
                    }
                    let line = &plane[iy as usize * g.iw..][..g.iw];
                    let x0 = self.ox[0] + (kj * g.dw) as isize;
                    let sw = g.sw as isize;
                    // Columns j with 0 <= x0 + j·sw < iw.
                    let lo = if x0 < 0 { ((-x0) + sw - 1) / sw } else { 0 } as usize;
                    let hi = if x0 >= g.iw as isize {
                        0
                    } else {
                        (((g.iw as isize - x0) + sw - 1) / sw) as usize
                    }
                    .min(np);
                    if lo < hi {
                        let first = (x0 + (lo as isize) * sw) as usize;
                        let line = &line[first..][..(hi - lo - 1) * g.sw + 1];
                        let dst = &mut row[lo..hi];
                        match g.sw {
                            // Constant strides, which LLVM vectorises.
                            1 => strided::<1>(line, dst, xor),
                            2 => strided::<2>(line, dst, xor),
                            sw => {
                                for (j, r) in dst.iter_mut().enumerate() {
                                    *r = line[j * sw] ^ xor;
                                }
                            }
                        }
                    }
                } else {
                    let (dy, dx) = ((ki * g.dh) as isize, (kj * g.dw) as isize);
                    let at = self.oy.iter().zip(&self.ox);
                    for (r, (&oy, &ox)) in row[..np].iter_mut().zip(at) {
                        let (iy, ix) = (oy + dy, ox + dx);
                        if iy >= 0 && ix >= 0 && (iy as usize) < g.ih && (ix as usize) < g.iw {
                            *r = plane[iy as usize * g.iw + ix as usize] ^ xor;
                        }
                    }
                }
            }
        }
    }
}

/// `dst[j] = src[j·S] ^ xor`, `src` holding `(len − 1)·S + 1` bytes at least.
#[inline(always)]
fn strided<const S: usize>(src: &[u8], dst: &mut [u8], xor: u8) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let src = &src[..(n - 1) * S + 1];
    for (j, d) in dst.iter_mut().enumerate() {
        *d = src[j * S] ^ xor;
    }
}

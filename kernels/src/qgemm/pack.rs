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
}

impl Source<'_> {
    /// Panics unless the source holds `k` rows of the product by `cols` columns.
    pub(crate) fn check(&self, k: usize, cols: usize) {
        match self {
            Source::Conv { x, g, channels } => {
                assert_eq!(
                    channels * g.kh * g.kw,
                    k,
                    "qgemm: conv taps disagree with k"
                );
                assert_eq!(g.oh * g.ow, cols, "qgemm: conv output disagrees with cols");
                assert!(
                    x.len() >= channels * g.ih * g.iw,
                    "qgemm: conv input too small"
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
    let mut col = [pad; NR];
    let put = |kk: usize, col: &[u8; NR], panel: &mut [u8]| {
        let (g, t) = (kk / gs, kk % gs);
        let base = g * NR * 4;
        match format {
            Format::I16 => {
                for j in 0..NR {
                    let v = if j < np { col[j] as i32 - zx } else { 0 } as i16;
                    let at = base + j * 4 + t * 2;
                    panel[at..at + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                for j in 0..NR {
                    panel[base + j * 4 + t] = col[j];
                }
            }
        }
    };
    match src {
        Source::Rows { x, ld } => {
            for kk in 0..k {
                for j in 0..np {
                    col[j] = x[(p0 + j) * ld + kk] ^ xor;
                }
                put(kk, &col, panel);
            }
        }
        Source::Conv { x, g, channels } => {
            let isz = g.ih * g.iw;
            let direct = g.kh == 1
                && g.kw == 1
                && g.sh == 1
                && g.sw == 1
                && g.pt == 0
                && g.pl == 0
                && g.oh == g.ih
                && g.ow == g.iw;
            let mut oy = [0isize; NR];
            let mut ox = [0isize; NR];
            for j in 0..np {
                let p = p0 + j;
                oy[j] = ((p / g.ow) * g.sh) as isize - g.pt as isize;
                ox[j] = ((p % g.ow) * g.sw) as isize - g.pl as isize;
            }
            let mut kk = 0;
            for c in 0..*channels {
                let plane = &x[c * isz..(c + 1) * isz];
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        if direct {
                            for j in 0..np {
                                col[j] = plane[p0 + j] ^ xor;
                            }
                        } else {
                            let (dy, dx) = ((ki * g.dh) as isize, (kj * g.dw) as isize);
                            for j in 0..np {
                                let (iy, ix) = (oy[j] + dy, ox[j] + dx);
                                col[j] = if iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < g.ih
                                    && (ix as usize) < g.iw
                                {
                                    plane[iy as usize * g.iw + ix as usize] ^ xor
                                } else {
                                    pad
                                };
                            }
                        }
                        put(kk, &col, panel);
                        kk += 1;
                    }
                }
            }
        }
    }
    // The tail of the last group (k not a multiple of the group size) meets zero weights.
    col = [pad; NR];
    for kk in k..kg * gs {
        put(kk, &col, panel);
    }
}

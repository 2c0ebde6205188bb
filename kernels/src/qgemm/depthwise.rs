//! Quantized depthwise convolution, two ways, both exact:
//! - [`run_block`]: a block of channels through the fp32 [`DepthwisePlan`] (vectorised across
//!   channels), reading bytes as `x − zx` and taking the filters as `w − zw` in f32, with the
//!   requantizing epilogue applied to each output row in lanes before it is stored. The runtime
//!   uses this one.
//! - [`run_channel`]: one channel at a time: the channel is copied once into
//!   zero-point-shifted planes (one per column phase of the stride, so every tap reads a
//!   contiguous run), each output row accumulates its taps, and the row is requantized. Kept as
//!   the reference the blocked path is tested against.
//!
//! The planes and sums are f32 holding integers: each product is below 2^16 in magnitude and a
//! window of at most [`MAX_TAPS`] of them stays below 2^24, so every partial sum, in any order,
//! is exact (the integer result) while using the FMA units; both paths therefore give the same
//! bits. `run_channel`'s loops are plain Rust compiled for AVX2 / AVX-512BW on x86-64 (LLVM
//! vectorises the widening multiply-adds), baseline NEON on aarch64.

use super::{quantize_byte, OutKind, QKernel};
use crate::conv::depthwise::{store_row, tile_of, transpose8, TILE};
use crate::conv::{DepthwisePlan, Planes, RowSink, Window2d};

/// Largest window whose f32 sums are exact: 258 · 255 · 255 < 2^24.
pub const MAX_TAPS: usize = 258;

/// Most lanes a [`DepthwisePlan`] uses.
const MAX_LANES: usize = 16;

/// Filters `w − zw` (`[channel][tap]`, each in −255..=255) as the f32s [`run_block`] takes.
pub fn taps_f32(w: &[i32]) -> Vec<f32> {
    w.iter().map(|&v| v as f32).collect()
}

/// Convolves `channels ≤ plan.lanes()` consecutive channels: `x` holds their input planes
/// (bytes xor `xor` give u8 values with zero point `zx`), `w` their filters from [`taps_f32`],
/// and channel `c`'s `y = acc·mult[c] + add[c]` goes through `kind` into its plane of `out`
/// (`channels` planes of `oh·ow`). Gives exactly [`run_channel`]'s result. `scratch` holds
/// `plan.scratch_len()` f32s.
#[allow(clippy::too_many_arguments)]
pub fn run_block(
    plan: &DepthwisePlan,
    channels: usize,
    x: &[u8],
    xor: u8,
    zx: i32,
    w: &[f32],
    mult: &[f32],
    add: &[f32],
    kind: OutKind,
    out: PlaneOut,
    scratch: &mut [f32],
) {
    let g = plan.window();
    assert!(
        g.taps() <= MAX_TAPS,
        "qdepthwise: window too large for exact sums"
    );
    assert!(channels <= plan.lanes() && mult.len() >= channels && add.len() >= channels);
    let n = channels * g.out_size();
    let out = match out {
        PlaneOut::Bytes(o) => PlaneOut::Bytes(&mut o[..n]),
        PlaneOut::F32(o) => PlaneOut::F32(&mut o[..n]),
    };
    let mut sink = Requant {
        mult: std::array::from_fn(|c| mult.get(c).filter(|_| c < channels).copied().unwrap_or(0.0)),
        add: std::array::from_fn(|c| add.get(c).filter(|_| c < channels).copied().unwrap_or(0.0)),
        kind,
        out,
    };
    let x = Planes::Bytes { x, xor, zx };
    plan.run_block_into(channels, x, w, None, &mut sink, scratch);
}

/// The epilogue as a [`RowSink`]: per lane `acc·mult + add`, then clamped and rounded (the byte
/// in the low bits of an f32 until the store) or clamped as f32.
struct Requant<'a> {
    mult: [f32; MAX_LANES],
    add: [f32; MAX_LANES],
    kind: OutKind,
    out: PlaneOut<'a>,
}

impl RowSink for Requant<'_> {
    #[inline(always)]
    fn row<const L: usize, const AVX: bool>(
        &mut self,
        g: &Window2d,
        row: &mut [[f32; L]],
        oy: usize,
        channels: usize,
    ) {
        let (mult, add) = (&self.mult[..L], &self.add[..L]);
        match (self.kind, &mut self.out) {
            (OutKind::Int { zp, lo, hi }, PlaneOut::Bytes(o)) => {
                // `quantize_byte`'s arithmetic; its low byte is taken when storing.
                epilogue::<L, AVX, true>(row, mult, add, zp, lo, hi);
                store_bytes::<L, AVX>(g, row, oy, o, channels);
            }
            (OutKind::F32 { lo, hi }, PlaneOut::F32(o)) => {
                epilogue::<L, AVX, false>(row, mult, add, 0.0, lo, hi);
                store_row::<L, AVX>(g, row, oy, o, channels);
            }
            _ => panic!("qdepthwise: output buffer does not match the epilogue's kind"),
        }
    }
}

/// `quantize_byte`'s rounding constant, 1.5 · 2^23.
const MAGIC: f32 = 12_582_912.0;

/// Per lane `v = clamp(v·mult + add + zp, lo, hi) + MAGIC` for byte outputs (`Q`), else
/// `clamp(v·mult + add, lo, hi)`: the same operations in the same order as [`run_channel`].
#[inline(always)]
fn epilogue<const L: usize, const AVX: bool, const Q: bool>(
    row: &mut [[f32; L]],
    mult: &[f32],
    add: &[f32],
    zp: f32,
    lo: f32,
    hi: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if AVX && L.is_multiple_of(8) {
        // SAFETY: AVX is true only inside the AVX2 / AVX-512 bodies of `DepthwisePlan`, which
        // run after checking that the CPU has AVX2 (which includes AVX).
        unsafe { epilogue_avx::<Q>(row.as_flattened_mut(), L, mult, add, zp, lo, hi) };
        return;
    }
    let (mult, add) = (&mult[..L], &add[..L]);
    for v in row.iter_mut() {
        for i in 0..L {
            v[i] = if Q {
                (v[i] * mult[i] + add[i] + zp).max(lo).min(hi) + MAGIC
            } else {
                (v[i] * mult[i] + add[i]).max(lo).min(hi)
            };
        }
    }
}

/// [`epilogue`] in AVX registers, 8 lanes at a time (`l` lanes per pixel, a multiple of 8).
/// Left to itself LLVM vectorises that loop across pixels with gathers and scatters.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn epilogue_avx<const Q: bool>(
    row: &mut [f32],
    l: usize,
    mult: &[f32],
    add: &[f32],
    zp: f32,
    lo: f32,
    hi: f32,
) {
    use std::arch::x86_64::*;
    assert!(l.is_multiple_of(8) && mult.len() >= l && add.len() >= l);
    let (zp, lo, hi, magic) = (
        _mm256_set1_ps(zp),
        _mm256_set1_ps(lo),
        _mm256_set1_ps(hi),
        _mm256_set1_ps(MAGIC),
    );
    for c0 in (0..l).step_by(8) {
        // SAFETY: `c0 + 8 ≤ l ≤ len` of both (asserted above); unaligned loads.
        let (m, a) = unsafe {
            (
                _mm256_loadu_ps(mult[c0..].as_ptr()),
                _mm256_loadu_ps(add[c0..].as_ptr()),
            )
        };
        for px in row.chunks_exact_mut(l) {
            let v = &mut px[c0..c0 + 8];
            // SAFETY: `v` holds 8 floats; unaligned load and store.
            unsafe {
                let mut y = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v.as_ptr()), m), a);
                if Q {
                    y = _mm256_add_ps(y, zp);
                }
                // `f32::max(y, lo)` and `min(…, hi)` as LLVM lowers them (y is never NaN).
                y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));
                if Q {
                    y = _mm256_add_ps(y, magic);
                }
                _mm256_storeu_ps(v.as_mut_ptr(), y);
            }
        }
    }
}

/// Stores row `oy` of the first `channels` byte planes of `y` from `row[ox][lane]`: the low
/// byte of each value's bits (`quantize_byte`'s result).
#[inline(always)]
fn store_bytes<const L: usize, const AVX: bool>(
    g: &Window2d,
    row: &[[f32; L]],
    oy: usize,
    y: &mut [u8],
    channels: usize,
) {
    let (osz, ow) = (g.out_size(), g.ow);
    let at = oy * ow;
    if !L.is_multiple_of(TILE) {
        for (k, v) in row.iter().enumerate().take(ow) {
            for (c, &v) in v.iter().enumerate().take(channels) {
                y[c * osz + at + k] = v.to_bits() as u8;
            }
        }
        return;
    }
    let mut j = 0;
    while j + TILE <= ow {
        bytes_tile::<L, AVX>(&row[j..j + TILE], TILE, y, at + j, osz, channels);
        j += TILE;
    }
    if j < ow {
        // The last few pixels through a padded tile.
        let mut tin = [[0.0f32; L]; TILE];
        tin[..ow - j].copy_from_slice(&row[j..ow]);
        bytes_tile::<L, AVX>(&tin, ow - j, y, at + j, osz, channels);
    }
}

/// Stores `r ≤ 8` pixels of `src` (8 × `L`, transposed one 8 × 8 tile at a time) at offset `at`
/// of the first `channels` planes (`osz` bytes apart) of `y`.
#[inline(always)]
fn bytes_tile<const L: usize, const AVX: bool>(
    src: &[[f32; L]],
    r: usize,
    y: &mut [u8],
    at: usize,
    osz: usize,
    channels: usize,
) {
    let mut t = [[0.0f32; TILE]; L];
    for c0 in (0..L).step_by(TILE) {
        let mut d = t[c0..c0 + TILE].iter_mut();
        transpose8::<AVX>(
            tile_of(|k| &src[k][c0..c0 + TILE]),
            tile_of(|_| &mut d.next().expect("tile")[..]),
        );
    }
    for (c, tc) in t.iter().enumerate().take(channels) {
        for (d, &v) in y[c * osz + at..][..r].iter_mut().zip(tc) {
            *d = v.to_bits() as u8;
        }
    }
}

/// Rows and columns of the padded plane the taps read.
fn padded(g: &Window2d) -> (usize, usize) {
    let hp = (g.oh.max(1) - 1) * g.sh + (g.kh - 1) * g.dh + 1;
    let wp = (g.ow.max(1) - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    (hp, wp)
}

/// Scratch bytes [`run_channel`] needs for this window.
pub fn scratch_bytes(g: &Window2d) -> usize {
    let (hp, wp) = padded(g);
    (g.sw * hp * wp.div_ceil(g.sw) + g.ow + wp) * 4 + 192
}

/// One output channel's plane.
pub enum PlaneOut<'a> {
    Bytes(&'a mut [u8]),
    F32(&'a mut [f32]),
}

/// Convolves one channel: `x` is its input plane (bytes xor `xor` give u8 values with zero
/// point `zx`), `w` its taps minus the weight zero point (`kh·kw`), and `y = acc·mult + add`
/// goes through `kind` into `out` (`oh·ow`).
#[allow(clippy::too_many_arguments)]
pub fn run_channel(
    kernel: QKernel,
    g: &Window2d,
    x: &[u8],
    xor: u8,
    zx: i32,
    w: &[i32],
    mult: f32,
    add: f32,
    kind: OutKind,
    out: PlaneOut,
    scratch: &mut [u8],
) {
    assert!(x.len() >= g.ih * g.iw && w.len() >= g.kh * g.kw);
    assert!(
        g.kh * g.kw <= MAX_TAPS,
        "qdepthwise: window too large for exact sums"
    );
    assert!(
        scratch.len() >= scratch_bytes(g),
        "qdepthwise: scratch too small"
    );
    match &out {
        PlaneOut::Bytes(o) => assert!(o.len() >= g.oh * g.ow),
        PlaneOut::F32(o) => assert!(o.len() >= g.oh * g.ow),
    }
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == QKernel::Avx512Vnni {
            // SAFETY: the kernel family was detected on this CPU (AVX-512BW is part of it).
            return unsafe { channel_avx512(g, x, xor, zx, w, mult, add, kind, out, scratch) };
        }
        if kernel == QKernel::Avx2 {
            // SAFETY: as above, AVX2.
            return unsafe { channel_avx2(g, x, xor, zx, w, mult, add, kind, out, scratch) };
        }
    }
    let _ = kernel;
    channel(g, x, xor, zx, w, mult, add, kind, out, scratch)
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn channel_avx512(
    g: &Window2d,
    x: &[u8],
    xor: u8,
    zx: i32,
    w: &[i32],
    mult: f32,
    add: f32,
    kind: OutKind,
    out: PlaneOut,
    scratch: &mut [u8],
) {
    channel(g, x, xor, zx, w, mult, add, kind, out, scratch)
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn channel_avx2(
    g: &Window2d,
    x: &[u8],
    xor: u8,
    zx: i32,
    w: &[i32],
    mult: f32,
    add: f32,
    kind: OutKind,
    out: PlaneOut,
    scratch: &mut [u8],
) {
    channel(g, x, xor, zx, w, mult, add, kind, out, scratch)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn channel(
    g: &Window2d,
    x: &[u8],
    xor: u8,
    zx: i32,
    w: &[i32],
    mult: f32,
    add: f32,
    kind: OutKind,
    mut out: PlaneOut,
    scratch: &mut [u8],
) {
    let (hp, wp) = padded(g);
    let wph = wp.div_ceil(g.sw);
    let plane_len = g.sw * hp * wph;
    let (planes, rest) = scratch.split_at_mut(plane_len * 4 + 64);
    // Scratch is 64-byte aligned by contract but slices may not be: align by hand.
    let planes = align_mut::<f32>(planes, plane_len);
    let (acc_bytes, row_bytes) = rest.split_at_mut(g.ow * 4 + 64);
    let acc = align_mut::<f32>(acc_bytes, g.ow);
    let row = align_mut::<f32>(row_bytes, wp);
    for py in 0..hp {
        let iy = py as isize - g.pt as isize;
        row.fill(0.0);
        if iy >= 0 && (iy as usize) < g.ih {
            let xrow = &x[iy as usize * g.iw..(iy as usize + 1) * g.iw];
            let start = g.pl.min(wp);
            let n = g.iw.min(wp - start);
            for (d, &v) in row[start..start + n].iter_mut().zip(&xrow[..n]) {
                *d = ((v ^ xor) as i32 - zx) as f32;
            }
        }
        if g.sw == 1 {
            planes[py * wph..py * wph + wp].copy_from_slice(row);
        } else {
            for s in 0..g.sw {
                let dst = &mut planes[(s * hp + py) * wph..(s * hp + py + 1) * wph];
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = row.get(i * g.sw + s).copied().unwrap_or(0.0);
                }
            }
        }
    }
    for oy in 0..g.oh {
        acc.fill(0.0);
        for ki in 0..g.kh {
            let py = oy * g.sh + ki * g.dh;
            for kj in 0..g.kw {
                let wv = w[ki * g.kw + kj] as f32;
                let px0 = kj * g.dw;
                let start = ((px0 % g.sw) * hp + py) * wph + px0 / g.sw;
                let row = &planes[start..start + g.ow];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v * wv;
                }
            }
        }
        let base = oy * g.ow;
        match (kind, &mut out) {
            (OutKind::Int { zp, lo, hi }, PlaneOut::Bytes(o)) => {
                for (d, &a) in o[base..base + g.ow].iter_mut().zip(acc.iter()) {
                    *d = quantize_byte(a * mult + add + zp, lo, hi);
                }
            }
            (OutKind::F32 { lo, hi }, PlaneOut::F32(o)) => {
                for (d, &a) in o[base..base + g.ow].iter_mut().zip(acc.iter()) {
                    *d = (a * mult + add).max(lo).min(hi);
                }
            }
            _ => panic!("qdepthwise: output buffer does not match the epilogue's kind"),
        }
    }
}

/// The first `len` elements of `T` in `bytes`, starting at the first suitably aligned byte.
fn align_mut<T: Copy>(bytes: &mut [u8], len: usize) -> &mut [T] {
    let off = bytes.as_ptr().align_offset(std::mem::align_of::<T>());
    let bytes = &mut bytes[off..];
    assert!(
        bytes.len() >= len * std::mem::size_of::<T>(),
        "qdepthwise: scratch too small"
    );
    // SAFETY: the pointer is aligned for T, the range is in bounds, and T (f32) has no
    // invalid bit patterns.
    unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, len) }
}

#[cfg(test)]
#[path = "depthwise_tests.rs"]
mod tests;

//! Quantized depthwise convolution, one channel at a time: the channel is copied once into
//! zero-point-shifted planes (one per column phase of the stride, so every tap reads a
//! contiguous run), each output row accumulates its taps, and the row is requantized.
//!
//! The planes and sums are f32 holding integers: each product is below 2^16 in magnitude and a
//! window of at most [`MAX_TAPS`] of them stays below 2^24, so every sum is exact (the integer
//! result) while using the FMA units.
//! The loops are plain Rust compiled for AVX2 / AVX-512BW on x86-64 (LLVM vectorises the
//! widening multiply-adds), baseline NEON on aarch64.

use super::{quantize_byte, OutKind, QKernel};

/// Largest window whose f32 sums are exact: 258 · 255 · 255 < 2^24.
pub const MAX_TAPS: usize = 258;
use crate::conv::Window2d;

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

//! Depthwise convolution vectorised across channels.
//!
//! A block of up to `L` channels (16 for AVX-512, 8 for AVX2, 4 for NEON and the portable
//! path) is copied into scratch as `[padded_h][padded_w][L]` with the zero padding written
//! out, the filters as `[taps][L]`; every output pixel is then a run of `L`-wide multiply-adds
//! with no bounds logic (4 or 8 pixels at a time), and each output row is scattered back into
//! the `L` NCHW output planes. On x86 both layout changes go through 8 × 8 AVX transposes.
//! The family is chosen like SGEMM's ([`Kernel::detect`]); the FMA bodies are one generic
//! function compiled per target feature set.
//!
//! The input planes may also be bytes read as `(b ^ xor) − zx` ([`Planes::Bytes`]) and the
//! output rows may go to any [`RowSink`]: the int8 depthwise convolution runs this same kernel on
//! exact integers held in f32, with its requantizing epilogue as the sink.

use super::Window2d;
use crate::gemm::Kernel;

/// A depthwise convolution planned for one geometry and one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct DepthwisePlan {
    g: Window2d,
    kernel: Kernel,
    lanes: usize,
    /// Output rows per band, and padded input rows the band reads: the input block is
    /// materialised one band at a time so it stays in cache.
    band: usize,
    bh: usize,
    /// Columns of the padded input block: exactly what the outputs read.
    pw: usize,
    /// Convolve f32 planes in place, one plane at a time (`planar`), instead of in blocks of
    /// channels: AVX-512, 3×3 or 5×5 windows at stride 1 with "same" padding on planes 56–256
    /// wide, or at stride 2 with output rows 56–128 wide (`planar::fits`).
    planar: bool,
}

/// Bytes of padded input one band aims at (well inside L2).
const BAND_BYTES: usize = 128 << 10;

/// Floats of slack in the scratch for aligning the band to 64 bytes.
const ALIGN: usize = 16;

impl DepthwisePlan {
    /// Plans for the fastest family this CPU runs.
    pub fn new(g: &Window2d) -> DepthwisePlan {
        DepthwisePlan::with_kernel(g, Kernel::detect())
    }

    /// Plans for a chosen family (tests run every one the CPU supports).
    pub fn with_kernel(g: &Window2d, kernel: Kernel) -> DepthwisePlan {
        let lanes = match kernel {
            Kernel::Avx512 => 16,
            Kernel::Avx2 => 8,
            Kernel::Neon | Kernel::Portable => 4,
        };
        let pw = span(g.ow, g.sw, g.kw, g.dw);
        let fit = BAND_BYTES / (pw * lanes * 4).max(1);
        let halo = (g.kh - 1) * g.dh;
        let band = if fit > halo {
            (fit - halo - 1) / g.sh + 1
        } else {
            1
        };
        let band = band.clamp(1, g.oh.max(1));
        DepthwisePlan {
            g: *g,
            kernel,
            lanes,
            band,
            bh: span(band, g.sh, g.kh, g.dh),
            pw,
            planar: kernel == Kernel::Avx512 && planar::fits(g),
        }
    }

    /// The same plan without the planar path (benches and tests compare the two).
    pub fn blocked(mut self) -> DepthwisePlan {
        self.planar = false;
        self
    }

    /// Whether f32 blocks run the planar path.
    pub fn is_planar(&self) -> bool {
        self.planar
    }

    /// The same plan with `band` output rows per band (tests cover many bands on small planes).
    #[cfg(test)]
    pub(crate) fn with_band(mut self, band: usize) -> DepthwisePlan {
        let g = &self.g;
        self.band = band.clamp(1, g.oh.max(1));
        self.bh = span(self.band, g.sh, g.kh, g.dh);
        self
    }

    /// Channels per block.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// The window this plan convolves.
    pub fn window(&self) -> &Window2d {
        &self.g
    }

    /// f32s of scratch one [`run_block`](Self::run_block) call needs (byte inputs included),
    /// with room to start the band on a 64-byte boundary.
    pub fn scratch_len(&self) -> usize {
        self.band_len() + ALIGN
    }

    /// f32s of the band and the other buffers [`block`] cuts from the scratch.
    fn band_len(&self) -> usize {
        (self.bh * (self.pw + self.g.iw) + self.g.taps() + 1 + self.g.ow) * self.lanes
    }

    /// Convolves `channels ≤ lanes()` consecutive planes of `x` (each `ih × iw`) with their
    /// filters `w` (each `kh × kw`) plus `bias`, overwriting the `channels` planes of `y`
    /// (each `oh × ow`).
    pub fn run_block(
        &self,
        channels: usize,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        self.run_block_clamped(channels, x, w, bias, y, scratch, None);
    }

    /// As [`run_block`](Self::run_block), then, where this plan can do it as it stores (the
    /// planar path), each output clamped to `min(max(v, lo), hi)` (a NaN gives `lo`). Returns
    /// whether it did: if not, the caller applies the clamp.
    #[allow(clippy::too_many_arguments)]
    pub fn run_block_clamped(
        &self,
        channels: usize,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
        clamp: Option<(f32, f32)>,
    ) -> bool {
        let y = &mut y[..channels * self.g.out_size()];
        #[cfg(target_arch = "x86_64")]
        if self.planar {
            assert!(Kernel::supported().contains(&Kernel::Avx512));
            let (g, taps) = (&self.g, self.g.taps());
            let (isz, osz) = (g.in_size(), g.out_size());
            for (c, yc) in y.chunks_exact_mut(osz).enumerate() {
                let b = bias.map_or(0.0, |b| b[c]);
                let (xc, wc) = (&x[c * isz..][..isz], &w[c * taps..][..taps]);
                // SAFETY: AVX-512F (asserted above); the plan's geometry fits (`planar::fits`).
                unsafe { planar::plane(g, xc, wc, b, clamp, yc) };
            }
            return clamp.is_some();
        }
        // The blocked path leaves the clamp to the caller.
        let _ = clamp;
        self.run_block_into(
            channels,
            Planes::F32(x),
            w,
            bias,
            &mut F32Planes(y),
            scratch,
        );
        false
    }

    /// As [`run_block`](Self::run_block), for any input planes, with every output row (sums
    /// plus bias, `[ow][lanes]`) handed to `sink`.
    pub fn run_block_into<S: RowSink>(
        &self,
        channels: usize,
        x: Planes,
        w: &[f32],
        bias: Option<&[f32]>,
        sink: &mut S,
        scratch: &mut [f32],
    ) {
        let (g, l) = (&self.g, self.lanes);
        assert!(
            channels >= 1 && channels <= l,
            "depthwise block of {channels} channels"
        );
        let n = channels * g.in_size();
        let b = Block {
            channels,
            x: match x {
                Planes::F32(x) => Planes::F32(&x[..n]),
                Planes::Bytes { x, xor, zx } => Planes::Bytes {
                    x: &x[..n],
                    xor,
                    zx,
                },
            },
            w: &w[..channels * g.taps()],
            bias: bias.map(|b| &b[..channels]),
        };
        // The band's pixels are vectors of `lanes` floats read at every tap: a band starting
        // off a 64-byte boundary would split every AVX-512 load across two cache lines.
        let off = scratch.as_ptr().align_offset(64).min(ALIGN);
        let scratch = &mut scratch[off..off + self.band_len()];
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                assert!(Kernel::supported().contains(&Kernel::Avx512));
                // SAFETY: the CPU runs AVX-512F and FMA (checked just above).
                unsafe { block_avx512(self, &b, sink, scratch) }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                assert!(Kernel::supported().contains(&Kernel::Avx2));
                // SAFETY: the CPU runs AVX2 and FMA (checked just above).
                unsafe { block_avx2(self, &b, sink, scratch) }
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => block::<4, true, false, 4, S>(self, &b, sink, scratch),
            _ => block::<4, false, false, 4, S>(self, &b, sink, scratch),
        }
    }
}

/// One plane at a time, in place: for layers whose planes are wide enough to fill vectors along
/// their rows (EfficientNet's and MobileNet's first depthwise layers, 112 and 56 wide), the
/// window is a stencil over each plane. Each output vector of 16 pixels is the bias plus `K·K`
/// multiply-adds, one per tap, of 16 consecutive lanes of an input row: the row is loaded once
/// per window row as whole vectors (lanes outside the plane masked to zero, so the padding is
/// never written out) and each tap's view is those vectors shifted by whole lanes in registers
/// (`valignd`); at stride 2 the row is first split into its even and odd columns (`vpermt2ps`),
/// so a tap's inputs are again consecutive lanes of one of the two. Up to 4 output vectors of a
/// row, and at stride 1 two rows, are summed side by side to hide the multiply-add latency. No
/// copy of the input, no transposes in or out, which the blocked path's `[h][w][lanes]` layout
/// costs on large planes. Window rows outside the plane are skipped rather than multiplied by
/// zero padding, so an infinite or NaN weight in them would not reach the border rows' outputs
/// as it does on the blocked path (finite weights give the same sums, bit for bit).
#[cfg(target_arch = "x86_64")]
mod planar {
    use super::Window2d;

    /// Narrower planes (output rows, at stride 2) leave too few vectors per row to hide the
    /// multiply-adds' latency: the blocked path takes them (EfficientNet's 28-wide layers ran
    /// 1.2–1.4× slower here).
    pub const PLANAR_MIN_W: usize = 56;
    /// Widest plane taken (a tuning bound: wider rows simply run more groups of vectors).
    const MAX_W: usize = 256;
    /// Most output vectors of a row summed side by side (a 112-wide row runs as 4 + 3; 8 at
    /// a time kept more vectors live than there are registers, and ran 2–5% slower).
    const U: usize = 4;

    /// A square 3×3 or 5×5 window, dilation 1, planes `PLANAR_MIN_W..=MAX_W` wide, and either
    /// stride 1 with `K/2` padding on every side (the output the input's size) or stride 2 with
    /// leading pads below `K` and output rows `PLANAR_MIN_W..=MAX_W / 2` wide.
    pub fn fits(g: &Window2d) -> bool {
        let k = g.kh;
        let p = k / 2;
        let square = (k == 3 || k == 5) && g.kw == k && (g.dh, g.dw) == (1, 1);
        let same = (g.sh, g.sw) == (1, 1)
            && (g.pt, g.pl, g.pb, g.pr) == (p, p, p, p)
            && (g.oh, g.ow) == (g.ih, g.iw);
        // Stride 2: any leading pads up to the window (the trailing ones only decide the
        // output size; reads past the plane are masked to zero either way).
        let halved = (g.sh, g.sw) == (2, 2)
            && g.pt < k
            && g.pl < k
            && (PLANAR_MIN_W..=MAX_W / 2).contains(&g.ow);
        square && (same || halved) && (PLANAR_MIN_W..=MAX_W).contains(&g.iw)
    }

    /// One plane: `y = bias + Σ w[ky][kx] · x[s·oy + ky − pt][s·ox + kx − pl]` (stride `s`, zero
    /// outside the plane), the taps in row-major order after the bias, as the blocked path sums
    /// them.
    ///
    /// # Safety
    /// The CPU runs AVX-512F; `fits(g)`; `x` holds `ih·iw` floats, `w` `kh·kw`, `y` `oh·ow`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn plane(
        g: &Window2d,
        x: &[f32],
        w: &[f32],
        bias: f32,
        clamp: Option<(f32, f32)>,
        y: &mut [f32],
    ) {
        match (g.kh, g.sh) {
            (3, 1) => unsafe { plane_k::<3, 1>(g, x, w, bias, clamp, y) },
            (_, 1) => unsafe { plane_k::<5, 1>(g, x, w, bias, clamp, y) },
            (3, _) => unsafe { plane_k::<3, 2>(g, x, w, bias, clamp, y) },
            _ => unsafe { plane_k::<5, 2>(g, x, w, bias, clamp, y) },
        }
    }

    /// The plane's output rows in groups of up to `U` vectors, each group through [`group`]
    /// (stride 1) or [`group_s2`] (stride 2, each input row first split into its even and odd
    /// columns, so tap kx of 16 consecutive outputs is 16 consecutive lanes of one phase).
    #[target_feature(enable = "avx512f")]
    unsafe fn plane_k<const K: usize, const S: usize>(
        g: &Window2d,
        x: &[f32],
        w: &[f32],
        bias: f32,
        clamp: Option<(f32, f32)>,
        y: &mut [f32],
    ) {
        assert!(fits(g) && g.kh == K && g.sh == S && w.len() >= K * K);
        assert!(x.len() >= g.in_size() && y.len() >= g.out_size());
        let blocks = g.ow.div_ceil(16);
        let mut b0 = 0;
        while b0 < blocks {
            let nb = U.min(blocks - b0);
            let a = (g, x, w, bias, clamp, &mut *y, b0);
            // SAFETY: as this function's; `b0 + nb ≤ blocks`.
            unsafe {
                match (S, nb) {
                    (1, 1) => group::<K, 1>(a),
                    (1, 2) => group::<K, 2>(a),
                    (1, 3) => group::<K, 3>(a),
                    (1, _) => group::<K, 4>(a),
                    (_, 1) => group_s2::<K, 1>(a),
                    (_, 2) => group_s2::<K, 2>(a),
                    (_, 3) => group_s2::<K, 3>(a),
                    _ => group_s2::<K, 4>(a),
                }
            }
            b0 += nb;
        }
    }

    /// A group's arguments: the window, input plane, filter, bias, clamp, output plane and the
    /// group's first output vector.
    type Args<'a> = (
        &'a Window2d,
        &'a [f32],
        &'a [f32],
        f32,
        Option<(f32, f32)>,
        &'a mut [f32],
        usize,
    );

    /// The lanes of a vector whose first lane is column `first` that fall inside `0..width`.
    fn inside(first: isize, width: usize) -> u16 {
        let lo = (-first).clamp(0, 16) as u32;
        let hi = (width as isize - first).clamp(0, 16) as u32;
        (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16
    }

    /// Stores a group's `NB` sums at `out` (clamped if asked): whole vectors but the last,
    /// which `last` masks at the row's end.
    ///
    /// # Safety
    /// AVX-512F; `out` is writable for `16·(NB − 1)` floats plus the lanes of `last`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store<const NB: usize>(
        out: *mut f32,
        acc: [std::arch::x86_64::__m512; NB],
        last: u16,
        clamp: Option<(f32, f32)>,
    ) {
        use std::arch::x86_64::*;
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: the caller's contract.
            unsafe {
                if j + 1 < NB {
                    _mm512_storeu_ps(out.add(16 * j), clamped(*a, clamp));
                } else {
                    _mm512_mask_storeu_ps(out.add(16 * j), last, clamped(*a, clamp));
                }
            }
        }
    }

    /// Output vectors `b0 .. b0 + NB` of every output row at stride 2.
    ///
    /// # Safety
    /// As [`plane`]'s, stride 2, and `b0 + NB ≤ ⌈ow / 16⌉`.
    #[target_feature(enable = "avx512f")]
    unsafe fn group_s2<const K: usize, const NB: usize>((g, x, w, bias, clamp, y, b0): Args) {
        use std::arch::x86_64::*;
        let (h, wd, oh, ow, pt, pl) = (g.ih, g.iw, g.oh, g.ow, g.pt, g.pl);
        // Input vectors 2j and 2j + 1 (columns 32j .. 32j + 32) for output vectors
        // j = b0 − 1 ..= b0 + NB: their lanes inside the row.
        let mut masks = [[0u16; 2]; U + 2];
        for (j, m) in masks.iter_mut().enumerate().take(NB + 2) {
            for (half, m) in m.iter_mut().enumerate() {
                *m = inside(32 * (b0 + j) as isize - 32 + 16 * half as isize, wd);
            }
        }
        let last = inside(16 * (b0 + NB - 1) as isize, ow);
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        for oy in 0..oh {
            let mut acc = [_mm512_set1_ps(bias); NB];
            for ky in 0..K {
                // Input row 2·oy + ky − pt, if inside the plane.
                let iy = (2 * oy + ky).wrapping_sub(pt);
                if iy >= h {
                    continue;
                }
                let row = xp.wrapping_add(iy * wd + 32 * b0).wrapping_sub(32);
                let mut ev = [_mm512_setzero_ps(); U + 2];
                let mut od = [_mm512_setzero_ps(); U + 2];
                for j in 0..NB + 2 {
                    // SAFETY: the lanes the masks keep are inside row iy of `x`; AVX-512
                    // suppresses faults on the others.
                    let (a, b) = unsafe {
                        (
                            _mm512_maskz_loadu_ps(masks[j][0], row.wrapping_add(32 * j)),
                            _mm512_maskz_loadu_ps(masks[j][1], row.wrapping_add(32 * j + 16)),
                        )
                    };
                    ev[j] = _mm512_permutex2var_ps(a, even, b);
                    od[j] = _mm512_permutex2var_ps(a, odd, b);
                }
                for kx in 0..K {
                    // Column 2·ox + kx − pl: phase (kx − pl) mod 2, shifted by ⌊(kx − pl) / 2⌋.
                    let d = kx as isize - pl as isize;
                    let (ph, sh) = (
                        if d.rem_euclid(2) == 0 { &ev } else { &od },
                        d.div_euclid(2),
                    );
                    let wv = _mm512_set1_ps(w[ky * K + kx]);
                    for (j, a) in acc.iter_mut().enumerate() {
                        let t = shift(ph[j], ph[j + 1], ph[j + 2], sh);
                        *a = _mm512_fmadd_ps(wv, t, *a);
                    }
                }
            }
            // SAFETY: vectors before the last are whole and inside row oy; the last one's mask
            // stops at the row's end.
            unsafe { store(yp.wrapping_add(oy * ow + 16 * b0), acc, last, clamp) };
        }
    }

    /// Vectors `b0 .. b0 + NB` of every output row, their `NB` sums side by side. Each input
    /// row is loaded once per window row as whole vectors (zeros outside the row), and the
    /// taps' shifted views are built in registers (`valignd`) from a vector and its
    /// neighbour, so nothing is loaded across a vector's edge.
    ///
    /// # Safety
    /// As [`plane`]'s, and `b0 + NB ≤ ⌈iw / 16⌉`.
    #[target_feature(enable = "avx512f")]
    unsafe fn group<const K: usize, const NB: usize>((g, x, w, bias, clamp, y, b0): Args) {
        use std::arch::x86_64::*;
        let (h, wd, p) = (g.ih, g.iw, K / 2);
        // Vectors b0 − 1 .. b0 + NB + 1 of a row: their lanes inside the row.
        let mut masks = [0u16; U + 2];
        for (j, m) in masks.iter_mut().enumerate().take(NB + 2) {
            *m = inside(16 * (b0 + j) as isize - 16, wd);
        }
        let last = inside(16 * (b0 + NB - 1) as isize, wd);
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        // Two output rows at a time: each input row's vectors and their shifted views serve
        // both rows' sums (the window rows of row oy, then of oy + 1, in order).
        for oy in (0..h).step_by(2) {
            let rows = 2.min(h - oy);
            let mut acc = [[_mm512_set1_ps(bias); NB]; 2];
            // Input rows oy − p ..= oy + 1 + p that are inside the plane.
            for iy in oy.saturating_sub(p)..(oy + 2 + p).min(h) {
                let row = xp.wrapping_add(iy * wd + 16 * b0).wrapping_sub(16);
                let mut v = [_mm512_setzero_ps(); U + 2];
                for (j, v) in v.iter_mut().enumerate().take(NB + 2) {
                    // SAFETY: the lanes the mask keeps are inside row iy of `x`; AVX-512
                    // suppresses faults on the others.
                    *v = unsafe { _mm512_maskz_loadu_ps(masks[j], row.wrapping_add(16 * j)) };
                }
                for kx in 0..K {
                    let mut t = [_mm512_setzero_ps(); U];
                    for (j, t) in t.iter_mut().enumerate().take(NB) {
                        // Lanes 16·j + kx − p .. of vector j, its neighbours supplying the rest.
                        *t = shift(v[j], v[j + 1], v[j + 2], kx as isize - p as isize);
                    }
                    for (q, acc) in acc.iter_mut().enumerate().take(rows) {
                        // Window row of this input row for output row oy + q.
                        let ky = (iy + p).wrapping_sub(oy + q);
                        if ky >= K {
                            continue;
                        }
                        let wv = _mm512_set1_ps(w[ky * K + kx]);
                        for (a, t) in acc.iter_mut().zip(&t) {
                            *a = _mm512_fmadd_ps(wv, *t, *a);
                        }
                    }
                }
            }
            for (q, acc) in acc.iter().enumerate().take(rows) {
                let out = yp.wrapping_add((oy + q) * wd + 16 * b0);
                // SAFETY: vectors before the last are whole and inside row oy + q; the last
                // one's mask stops at the row's end.
                unsafe { store(out, *acc, last, clamp) };
            }
        }
    }

    /// `min(max(v, lo), hi)` (a NaN gives `lo`, as the runtime's ReLU and Clip do), or `v`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn clamped(
        v: std::arch::x86_64::__m512,
        clamp: Option<(f32, f32)>,
    ) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        match clamp {
            Some((lo, hi)) => {
                _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi))
            }
            None => v,
        }
    }

    /// Lanes `s ..` of `c` (−2 ≤ s ≤ 2), the lanes before it from `l` and after it from `r`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn shift(
        l: std::arch::x86_64::__m512,
        c: std::arch::x86_64::__m512,
        r: std::arch::x86_64::__m512,
        s: isize,
    ) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        let (l, c, r) = (
            _mm512_castps_si512(l),
            _mm512_castps_si512(c),
            _mm512_castps_si512(r),
        );
        let t = match s {
            -2 => _mm512_alignr_epi32::<14>(c, l),
            -1 => _mm512_alignr_epi32::<15>(c, l),
            0 => c,
            1 => _mm512_alignr_epi32::<1>(r, c),
            _ => _mm512_alignr_epi32::<2>(r, c),
        };
        _mm512_castsi512_ps(t)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod planar {
    use super::Window2d;
    pub fn fits(_: &Window2d) -> bool {
        false
    }
}

/// A block's input planes (each `ih × iw`).
#[derive(Debug, Clone, Copy)]
pub enum Planes<'a> {
    F32(&'a [f32]),
    /// Quantized activations: byte `b` is the value `(b ^ xor) − zx`.
    Bytes {
        x: &'a [u8],
        xor: u8,
        zx: i32,
    },
}

/// Receives a block's output rows.
pub trait RowSink {
    /// Row `oy` of the block's first `channels` output planes, as `row[ox][lane]` (the sink may
    /// overwrite it). `AVX` is true inside the AVX2 / AVX-512 bodies, where
    /// the crate's 8 × 8 transposes may use AVX.
    fn row<const L: usize, const AVX: bool>(
        &mut self,
        g: &Window2d,
        row: &mut [[f32; L]],
        oy: usize,
        channels: usize,
    );
}

/// The f32 sink: the block's output planes.
struct F32Planes<'a>(&'a mut [f32]);

impl RowSink for F32Planes<'_> {
    #[inline(always)]
    fn row<const L: usize, const AVX: bool>(
        &mut self,
        g: &Window2d,
        row: &mut [[f32; L]],
        oy: usize,
        channels: usize,
    ) {
        store_row::<L, AVX>(g, row, oy, self.0, channels);
    }
}

/// One block's inputs: `channels` planes, filters and biases.
struct Block<'a> {
    channels: usize,
    x: Planes<'a>,
    w: &'a [f32],
    bias: Option<&'a [f32]>,
}

/// Pixels transposed together between planes and lane vectors.
pub(crate) const TILE: usize = 8;

/// `[f(0), …, f(7)]`, built in place. `std::array::from_fn` with a closure that can panic (a
/// bounds check, an `expect`) compiled here to an out-of-line `try_from_fn` call whose result
/// was then read back through the stack: on 7×7 planes that was most of a block's time.
#[inline(always)]
pub(crate) fn tile_of<T>(mut f: impl FnMut(usize) -> T) -> [T; TILE] {
    [f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)]
}

/// `[f(0), …, f(L−1)]` for slices, filled in place (see [`tile_of`]).
#[inline(always)]
fn lanes_of<'a, T, const L: usize>(mut f: impl FnMut(usize) -> &'a [T]) -> [&'a [T]; L] {
    let mut a: [&[T]; L] = [&[]; L];
    for (c, a) in a.iter_mut().enumerate() {
        *a = f(c);
    }
    a
}

/// Prepares the block in scratch (`[bh][pw][L]` input band, `[taps][L]` filters, `[L]` bias, one
/// `[ow][L]` output row), then runs the accumulation loops, `NB` output pixels together.
#[inline(always)]
fn block<const L: usize, const FMA: bool, const AVX: bool, const NB: usize, S: RowSink>(
    p: &DepthwisePlan,
    b: &Block,
    sink: &mut S,
    scratch: &mut [f32],
) {
    let g = &p.g;
    let (buf, rest) = scratch.split_at_mut(p.bh * p.pw * L);
    let (wp, rest) = rest.split_at_mut(g.taps() * L);
    let (bp, rest) = rest.split_at_mut(L);
    let (row, cvt) = rest.split_at_mut(g.ow * L);
    let (wp, _) = wp.as_chunks_mut::<L>();
    let taps = g.taps();
    if b.channels == L && L.is_multiple_of(TILE) {
        // `[L][taps]` → `[taps][L]` through 8 × 8 transposes.
        for c0 in (0..L).step_by(TILE) {
            for t0 in (0..taps).step_by(TILE) {
                let r = TILE.min(taps - t0);
                let t = transpose8_cols::<AVX>(
                    std::array::from_fn(|i| &b.w[(c0 + i) * taps + t0..][..r]),
                    r,
                );
                for (d, t) in wp[t0..t0 + r].iter_mut().zip(&t) {
                    d[c0..c0 + TILE].copy_from_slice(t);
                }
            }
        }
    } else {
        wp.fill([0.0; L]);
        for (c, wc) in b.w.chunks_exact(taps).take(b.channels).enumerate() {
            for (d, &v) in wp.iter_mut().zip(wc) {
                d[c] = v;
            }
        }
    }
    for (c, v) in bp.iter_mut().enumerate() {
        *v = match b.bias {
            Some(bias) if c < b.channels => bias[c],
            _ => 0.0,
        };
    }
    let bias: [f32; L] = bp[..L].try_into().expect("bias holds L lanes");
    for oy0 in (0..g.oh).step_by(p.band) {
        let oys = oy0..(oy0 + p.band).min(g.oh);
        let rows = span(oys.len(), g.sh, g.kh, g.dh);
        pad_input::<L, AVX>(p, b, buf, cvt, oy0 * g.sh, rows);
        compute::<L, FMA, AVX, NB, S>(p, buf, wp, &bias, row, sink, b.channels, oys);
    }
}

/// Input rows (or columns) that `o` outputs of a window read: `(o−1)·s + (k−1)·d + 1`.
fn span(o: usize, s: usize, k: usize, d: usize) -> usize {
    if o == 0 {
        0
    } else {
        (o - 1) * s + (k - 1) * d + 1
    }
}

/// Writes padded rows `py0..py0 + rows` of the `[rows][pw][L]` input block, zeros in the
/// padding. Lanes past `channels` repeat
/// channel 0 (their filters are zero and their outputs never stored). Byte planes are first
/// converted into `cvt` (`L × bh × iw` f32s), the band's input rows of each channel in one run.
#[inline(always)]
fn pad_input<const L: usize, const AVX: bool>(
    p: &DepthwisePlan,
    b: &Block,
    buf: &mut [f32],
    cvt: &mut [f32],
    py0: usize,
    rows: usize,
) {
    let (g, pw) = (&p.g, p.pw);
    let left = g.pl.min(pw);
    let right = (g.pl + g.iw).min(pw);
    let (buf, _) = buf.as_chunks_mut::<L>();
    // The band's input rows `iy0..iy1`.
    let iy0 = py0.saturating_sub(g.pt).min(g.ih);
    let iy1 = (py0 + rows).saturating_sub(g.pt).min(g.ih).max(iy0);
    let per = p.bh * g.iw;
    if let Planes::Bytes { x, xor, zx } = b.x {
        let len = (iy1 - iy0) * g.iw;
        for (c, d) in cvt.chunks_exact_mut(per).take(b.channels).enumerate() {
            let s = &x[c * g.in_size() + iy0 * g.iw..][..len];
            for (d, &v) in d[..len].iter_mut().zip(s) {
                *d = ((v ^ xor) as i32 - zx) as f32;
            }
        }
    }
    let cvt = &*cvt;
    for (r, row) in buf.chunks_exact_mut(pw).take(rows).enumerate() {
        let iy = (py0 + r) as isize - g.pt as isize;
        if iy < 0 || iy >= g.ih as isize || left >= right {
            row.fill([0.0; L]);
            continue;
        }
        let iy = iy as usize;
        row[..left].fill([0.0; L]);
        row[right..].fill([0.0; L]);
        let n = right - left;
        let src: [&[f32]; L] = match b.x {
            Planes::F32(x) => lanes_of(|c| {
                let c = if c < b.channels { c } else { 0 };
                &x[c * g.in_size() + iy * g.iw..][..n]
            }),
            Planes::Bytes { .. } => lanes_of(|c| {
                let c = if c < b.channels { c } else { 0 };
                &cvt[c * per + (iy - iy0) * g.iw..][..n]
            }),
        };
        let mid = &mut row[left..right];
        let mut j = 0;
        while L.is_multiple_of(TILE) && j + TILE <= n {
            for c0 in (0..L).step_by(TILE) {
                let mut dst = mid[j..j + TILE].iter_mut();
                transpose8::<AVX>(
                    tile_of(|i| &src[c0 + i][j..j + TILE]),
                    tile_of(|_| &mut dst.next().expect("tile")[c0..c0 + TILE]),
                );
            }
            j += TILE;
        }
        if L.is_multiple_of(TILE) && j < n {
            // The last few pixels: one transpose reading only their columns.
            let r = n - j;
            for c0 in (0..L).step_by(TILE) {
                let t = transpose8_cols::<AVX>(tile_of(|i| &src[c0 + i][j..n]), r);
                for (d, t) in mid[j..n].iter_mut().zip(&t) {
                    d[c0..c0 + TILE].copy_from_slice(t);
                }
            }
        } else {
            for (k, d) in mid.iter_mut().enumerate().skip(j) {
                for (c, v) in d.iter_mut().enumerate() {
                    *v = src[c][k];
                }
            }
        }
    }
}

/// `dst[k][i] = src[i][k]` for an 8 × 8 tile (rows at least 8 long).
#[inline(always)]
pub(crate) fn transpose8<const AVX: bool>(src: [&[f32]; TILE], dst: [&mut [f32]; TILE]) {
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: AVX is true only inside `block_avx2` and `block_avx512`, which run after
        // their callers checked that the CPU has AVX2 (which includes AVX).
        unsafe { transpose8_avx(src, dst) };
        return;
    }
    for (i, s) in src.iter().enumerate() {
        for (k, v) in s[..TILE].iter().enumerate() {
            dst[k][i] = *v;
        }
    }
}

/// The 8 × 8 transpose in AVX registers: unpack pairs, shuffle quads, swap 128-bit halves.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose8_avx(src: [&[f32]; TILE], dst: [&mut [f32]; TILE]) {
    use std::arch::x86_64::*;
    assert!(src.iter().all(|s| s.len() >= 8) && dst.iter().all(|d| d.len() >= 8));
    // SAFETY: every row holds at least 8 floats (asserted above); unaligned loads and stores.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src[i].as_ptr()));
        for (d, v) in dst.into_iter().zip(transpose8_regs(r)) {
            _mm256_storeu_ps(d.as_mut_ptr(), v);
        }
    }
}

/// The 8 × 8 transpose of eight registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose8_regs(r: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// The first `r` (1..8) rows of an 8 × 8 transpose whose source rows hold only `r` columns:
/// `t[k][i] = src[i][k]` for `k < r` (later rows of `t` are unspecified).
#[inline(always)]
pub(crate) fn transpose8_cols<const AVX: bool>(
    src: [&[f32]; TILE],
    r: usize,
) -> [[f32; TILE]; TILE] {
    assert!((1..=TILE).contains(&r) && src.iter().all(|s| s.len() >= r));
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: AVX is true only inside `block_avx2` and `block_avx512` (and the int8
        // bodies), which run after their callers checked that the CPU has AVX2.
        return unsafe { transpose8_cols_avx(src, r) };
    }
    let mut t = [[0.0f32; TILE]; TILE];
    for (i, s) in src.iter().enumerate() {
        for (k, v) in s[..r].iter().enumerate() {
            t[k][i] = *v;
        }
    }
    t
}

/// An 8 × 8 transpose that writes only the first `r` (1..8) columns of each destination row:
/// `dst[k][i] = src[i][k]` for `i < r`.
#[inline(always)]
pub(crate) fn transpose8_into_cols<const AVX: bool>(
    src: [&[f32]; TILE],
    mut dst: [&mut [f32]; TILE],
    r: usize,
) {
    assert!((1..=TILE).contains(&r) && dst.iter().all(|d| d.len() >= r));
    #[cfg(target_arch = "x86_64")]
    if AVX {
        // SAFETY: as in `transpose8_cols`.
        unsafe { transpose8_into_cols_avx(src, dst, r) };
        return;
    }
    for (i, s) in src.iter().enumerate().take(r) {
        for (k, d) in dst.iter_mut().enumerate() {
            d[i] = s[k];
        }
    }
}

/// `_mm256_maskload_ps` / `_mm256_maskstore_ps` mask of the first `r` lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn first_lanes(r: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(r as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// [`transpose8_cols`] in AVX registers: masked loads of the `r` columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose8_cols_avx(src: [&[f32]; TILE], r: usize) -> [[f32; TILE]; TILE] {
    use std::arch::x86_64::*;
    assert!(src.iter().all(|s| s.len() >= r) && r <= TILE);
    let mask = first_lanes(r);
    // SAFETY: the masked loads touch only the first `r` floats of each row (asserted above).
    let rows = std::array::from_fn(|i| unsafe { _mm256_maskload_ps(src[i].as_ptr(), mask) });
    let out = transpose8_regs(rows);
    let mut t = [[0.0f32; TILE]; TILE];
    for (d, v) in t.iter_mut().zip(out) {
        // SAFETY: `d` holds 8 floats.
        unsafe { _mm256_storeu_ps(d.as_mut_ptr(), v) };
    }
    t
}

/// [`transpose8_into_cols`] in AVX registers: masked stores of the `r` columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose8_into_cols_avx(src: [&[f32]; TILE], dst: [&mut [f32]; TILE], r: usize) {
    use std::arch::x86_64::*;
    assert!(src.iter().all(|s| s.len() >= 8) && dst.iter().all(|d| d.len() >= r) && r <= TILE);
    // SAFETY: every source row holds at least 8 floats (asserted above).
    let rows = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(src[i].as_ptr()) });
    let mask = first_lanes(r);
    for (d, v) in dst.into_iter().zip(transpose8_regs(rows)) {
        // SAFETY: the masked store writes only the first `r` floats of `d` (asserted above).
        unsafe { _mm256_maskstore_ps(d.as_mut_ptr(), mask, v) };
    }
}

/// Scatters one `[ow][L]` output row into row `oy` of the first `channels` planes of `y`.
#[inline(always)]
pub(crate) fn store_row<const L: usize, const AVX: bool>(
    g: &Window2d,
    row: &[[f32; L]],
    oy: usize,
    y: &mut [f32],
    channels: usize,
) {
    let (osz, ow) = (g.out_size(), g.ow);
    if channels == L {
        let mut dst: [&mut [f32]; L] = std::array::from_fn(|_| Default::default());
        assert!(y.len() >= L * osz, "depthwise: L output planes");
        for (d, plane) in dst.iter_mut().zip(y.chunks_exact_mut(osz)) {
            *d = &mut plane[oy * ow..(oy + 1) * ow];
        }
        let mut j = 0;
        while L.is_multiple_of(TILE) && j + TILE <= ow {
            for (c0, d8) in dst.chunks_exact_mut(TILE).enumerate() {
                let c0 = c0 * TILE;
                let mut d8 = d8.iter_mut();
                transpose8::<AVX>(
                    tile_of(|k| &row[j + k][c0..c0 + TILE]),
                    tile_of(|_| &mut d8.next().expect("tile")[j..j + TILE]),
                );
            }
            j += TILE;
        }
        if L.is_multiple_of(TILE) && j < ow {
            // The last few pixels: one transpose writing only their columns.
            let r = ow - j;
            for (c0, d8) in dst.chunks_exact_mut(TILE).enumerate() {
                let c0 = c0 * TILE;
                let mut d8 = d8.iter_mut();
                transpose8_into_cols::<AVX>(
                    tile_of(|k| &row[j + k.min(r - 1)][c0..c0 + TILE]),
                    tile_of(|_| &mut d8.next().expect("tile")[j..ow]),
                    r,
                );
            }
        } else {
            for (k, v) in row.iter().enumerate().skip(j) {
                for (c, d) in dst.iter_mut().enumerate() {
                    d[k] = v[c];
                }
            }
        }
    } else {
        for (c, plane) in y.chunks_exact_mut(osz).take(channels).enumerate() {
            for (d, v) in plane[oy * ow..(oy + 1) * ow].iter_mut().zip(row) {
                *d = v[c];
            }
        }
    }
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `acc[l] += w[l] · x[l]` over one lane vector.
#[inline(always)]
fn lane_madd<const L: usize, const FMA: bool>(acc: &mut [f32; L], w: &[f32; L], x: &[f32; L]) {
    for i in 0..L {
        acc[i] = madd::<FMA>(w[i], x[i], acc[i]);
    }
}

/// The accumulation loops for output rows `oys` over their prepared band (`buf`
/// `[bh][pw][L]` starting at padded row `oys.start·sh`, `w` `[taps][L]`), one output row at a
/// time into `row` (`[ow][L]`), then scattered into `y`'s planes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn compute<const L: usize, const FMA: bool, const AVX: bool, const NB: usize, S: RowSink>(
    p: &DepthwisePlan,
    buf: &[f32],
    w: &[[f32; L]],
    bias: &[f32; L],
    row: &mut [f32],
    sink: &mut S,
    channels: usize,
    oys: std::ops::Range<usize>,
) {
    let g = &p.g;
    let (buf, _) = buf.as_chunks::<L>();
    let buf = &buf[..span(oys.len(), g.sh, g.kh, g.dh) * p.pw];
    let w = &w[..g.taps()];
    let (row, _) = row.as_chunks_mut::<L>();
    let row = &mut row[..g.ow];
    for (oy, band_row) in oys.zip(0..) {
        // Groups of NB (or 4) pixels; the last group of a row slides back to end at `ow`,
        // recomputing a few pixels rather than running a latency-bound single-pixel tail.
        let mut ox = 0;
        #[cfg(target_arch = "x86_64")]
        if L == 16 && AVX {
            if let Some((n, f)) = zmm_pixels(g) {
                // Checked like `pixels`: the window of every pixel lies inside the band.
                assert!(buf.len() >= span(band_row + 1, g.sh, g.kh, g.dh) * p.pw);
                while ox < g.ow {
                    let s = ox.min(g.ow - n);
                    // SAFETY: L == 16 and AVX only inside `block_avx512` (AVX-512F checked by
                    // its caller); rows `band_row·sh + ki·dh` of the band and pixels
                    // `s·sw .. (s + n − 1)·sw + kw − 1 < pw` (`pw` spans all `ow` outputs)
                    // are inside `buf` (asserted above); `w` holds `taps` vectors, `row` the
                    // `n` pixels `s..s + n ≤ ow`.
                    unsafe {
                        f(
                            buf.as_ptr().cast::<f32>().add(band_row * g.sh * p.pw * L),
                            p.pw,
                            g.kh,
                            g.dh,
                            w.as_ptr().cast::<f32>(),
                            bias.as_ptr(),
                            s,
                            row[s..s + n].as_mut_ptr().cast::<f32>(),
                        )
                    };
                    ox = s + n;
                }
                sink.row::<L, AVX>(g, row, oy, channels);
                continue;
            }
        }
        if g.ow >= NB {
            while ox < g.ow {
                let s = ox.min(g.ow - NB);
                let dst: &mut [[f32; L]; NB] = (&mut row[s..s + NB]).try_into().expect("NB");
                *dst = pixels::<L, FMA, NB>(p, buf, w, bias, band_row, s);
                ox = s + NB;
            }
        } else if g.ow >= 4 {
            while ox < g.ow {
                let s = ox.min(g.ow - 4);
                let dst: &mut [[f32; L]; 4] = (&mut row[s..s + 4]).try_into().expect("4");
                *dst = pixels::<L, FMA, 4>(p, buf, w, bias, band_row, s);
                ox = s + 4;
            }
        } else {
            for (ox, r) in row.iter_mut().enumerate() {
                *r = pixels::<L, FMA, 1>(p, buf, w, bias, band_row, ox)[0];
            }
        }
        sink.row::<L, AVX>(g, row, oy, channels);
    }
}

/// An AVX-512 body for a run of output pixels of one row: `(row0, pw, kh, dh, w, bias, ox,
/// out)`, `row0` the band's first row for this output row, `out` the pixels' 16 lanes each.
#[cfg(target_arch = "x86_64")]
type PixelsFn = unsafe fn(*const f32, usize, usize, usize, *const f32, *const f32, usize, *mut f32);

/// The register-blocked body for this window, if there is one, and the pixels it takes at a
/// time: widths 3, 5 and 7, strides 1 and 2, no column dilation; runs of 7 where that tiles
/// the row exactly (EfficientNet's 7·2ᵏ-wide planes) or the row is 7 wide, else runs of 8
/// (the last run of a row slides back to end at `ow`).
#[cfg(target_arch = "x86_64")]
fn zmm_pixels(g: &Window2d) -> Option<(usize, PixelsFn)> {
    macro_rules! pick {
        ($n:literal) => {
            match (g.kw, g.sw, g.dw) {
                (3, 1, 1) => pixels_zmm::<3, 1, $n> as PixelsFn,
                (5, 1, 1) => pixels_zmm::<5, 1, $n>,
                (7, 1, 1) => pixels_zmm::<7, 1, $n>,
                (3, 2, 1) => pixels_zmm::<3, 2, $n>,
                (5, 2, 1) => pixels_zmm::<5, 2, $n>,
                (7, 2, 1) => pixels_zmm::<7, 2, $n>,
                _ => return None,
            }
        };
    }
    if !g.ow.is_multiple_of(8) && g.ow.is_multiple_of(7) {
        Some((7, pick!(7)))
    } else if g.ow >= 8 {
        Some((8, pick!(8)))
    } else {
        None
    }
}

/// Output pixels `ox..ox + N` of one row, 16 channels each: every window row's
/// `(N − 1)·S + KW` input vectors are loaded once and feed all `KW` taps from registers
/// (`pixels` reads an input vector per multiply-add, which makes the loads, not the FMAs,
/// the limit).
///
/// # Safety
/// AVX-512F; for each `ki < kh`, the `(N − 1)·S + KW` vectors from
/// `row0 + ((ki·dh)·pw + ox·S)·16` are readable, `w` holds `kh·KW` vectors, `bias` one, and
/// `out` is writable for `N`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn pixels_zmm<const KW: usize, const S: usize, const N: usize>(
    row0: *const f32,
    pw: usize,
    kh: usize,
    dh: usize,
    w: *const f32,
    bias: *const f32,
    ox: usize,
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    /// Input vectors of the widest window (7·2 + 7).
    const MAX: usize = 21;
    // SAFETY: the caller's contract.
    unsafe {
        let b = _mm512_loadu_ps(bias);
        let mut acc = [b; N];
        for ki in 0..kh {
            let r = row0.add((ki * dh * pw + ox * S) * 16);
            let mut x = [_mm512_setzero_ps(); MAX];
            for (j, x) in x.iter_mut().enumerate().take((N - 1) * S + KW) {
                *x = _mm512_loadu_ps(r.add(j * 16));
            }
            for kj in 0..KW {
                let wv = _mm512_loadu_ps(w.add((ki * KW + kj) * 16));
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(wv, x[j * S + kj], *a);
                }
            }
        }
        for (j, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(j * 16), *a);
        }
    }
}

/// Output pixels `ox..ox + N` of the band's row `oy`, all lanes.
#[inline(always)]
fn pixels<const L: usize, const FMA: bool, const N: usize>(
    p: &DepthwisePlan,
    buf: &[[f32; L]],
    w: &[[f32; L]],
    bias: &[f32; L],
    oy: usize,
    ox: usize,
) -> [[f32; L]; N] {
    let g = &p.g;
    // Every tap reads inside the band: `oy·sh + ki·dh < span(oy + 1)` rows, and `pw` is the
    // span of the window over all `ow` outputs, so `ox·sw + kj·dw < pw`.
    assert!(buf.len() >= span(oy + 1, g.sh, g.kh, g.dh) * p.pw && ox + N <= g.ow);
    let at = |i: usize| -> &[f32; L] {
        debug_assert!(i < buf.len());
        // SAFETY: `i = (oy·sh + ki·dh)·pw + ox·sw + kj·dw < span(oy + 1)·pw ≤ buf.len()`
        // (asserted above, with `ox + N ≤ ow`).
        unsafe { buf.get_unchecked(i) }
    };
    let mut acc = [*bias; N];
    for ki in 0..g.kh {
        let base = (oy * g.sh + ki * g.dh) * p.pw + ox * g.sw;
        for (kj, wv) in w[ki * g.kw..(ki + 1) * g.kw].iter().enumerate() {
            let i0 = base + kj * g.dw;
            for (j, a) in acc.iter_mut().enumerate() {
                lane_madd::<L, FMA>(a, wv, at(i0 + j * g.sw));
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn block_avx512<S: RowSink>(p: &DepthwisePlan, b: &Block, sink: &mut S, scratch: &mut [f32]) {
    block::<16, true, true, 8, S>(p, b, sink, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_avx2<S: RowSink>(p: &DepthwisePlan, b: &Block, sink: &mut S, scratch: &mut [f32]) {
    block::<8, true, true, 8, S>(p, b, sink, scratch)
}

#[cfg(test)]
#[path = "depthwise_tests.rs"]
mod tests;

//! Quantized depthwise convolution on bytes with AVX-512 VNNI (`vpdpbusd`) and VBMI
//! (`vpermb`): 16 channels in the lanes, four taps of a kernel row per instruction.
//!
//! A block of 16 channels is copied into scratch as `[rows][cols][16]` u8 (16×16 byte
//! transposes; the padding holds the zero point), one band of output rows at a time. For each
//! output pixel and kernel row, one 64-byte load covers four neighbouring input pixels × 16
//! channels; `vpermb` regroups it so each 32-bit lane holds that channel's four taps, and
//! `vpdpbusd` multiplies them by the channel's four i8 weights and adds them to the i32
//! accumulator. Taps past the kernel width meet zero weights. The accumulator minus
//! `zx·Σw` is the exact integer sum, so the requantizing epilogue (the same f32 operations, in
//! the same order, as [`super::depthwise`]) gives the same bytes as the fp32-plan path, which
//! the tests check. Rows of 16 output bytes per pixel are transposed back into NCHW planes.
//!
//! Weights that do not fit i8 (u8 weights minus a zero point span −255…255) are split as
//! `w = 2·hi + lo` with `hi` in i8 and `lo` in {0, 1}: two `vpdpbusd` per load, the same exact
//! integer sum.
//!
//! Large planes (3×3 and 5×5 windows, output rows at least 28 wide; split filters 3×3 and 56
//! wide) take the planar path instead ([`DwVnni::run_block`] picks it): each channel's plane
//! convolved in place, the taps of 16 outputs gathered from one masked load of an input row,
//! without the scratch and the transposes, and with the same bytes.
//!
//! Used for byte outputs, dilation 1 and kernels up to 8 wide whose weights lie in −256…255;
//! everything else takes [`super::depthwise::run_block`].

use std::arch::x86_64::*;

use super::OutKind;
use crate::conv::Window2d;

/// Channels per block (lanes of one accumulator).
pub const LANES: usize = 16;

/// Kernel rows the filters of one block hold in registers (two groups each at most).
const MAX_ROWS: usize = 8;

/// Bytes of padded input one band aims at.
const BAND_BYTES: usize = 96 << 10;

/// Output rows at least this wide run plane by plane (`conv_bench "q dw"`: on 14-wide rows
/// the blocked path is faster, from 28 on the planar one).
const PLANAR_MIN_W: usize = 28;

/// Output rows at least this wide run plane by plane with split filters (3×3 only;
/// `CB_SPLIT=1 conv_bench "q dw"`: 56 and 112 wide won, 28 wide and 5×5 windows lost).
const PLANAR_SPLIT_MIN_W: usize = 56;

/// Runs of 16 outputs the planar path sums side by side.
const PLANAR_U: usize = 4;

/// A depthwise geometry planned for the VNNI kernel.
#[derive(Debug, Clone, Copy)]
pub struct DwVnni {
    g: Window2d,
    /// Groups of four taps per kernel row.
    groups: usize,
    /// Columns of the padded band: every 64-byte load stays inside.
    cols: usize,
    /// Output rows per band and the input rows they read.
    band: usize,
    bh: usize,
    /// Whether blocks with filters that fit i8 run plane by plane ([`DwVnni::planes`])
    /// rather than through the channel-interleaved scratch.
    planar: bool,
}

/// Filters packed by [`DwVnni::pack`]: per block of 16 channels, one block of i8 weights, or
/// `hi` then `lo` when split.
#[derive(Debug, Clone)]
pub struct Filters {
    data: Vec<i8>,
    per: usize,
    split: bool,
}

impl Filters {
    /// Whether the weights are split into `2·hi + lo`.
    pub fn split(&self) -> bool {
        self.split
    }

    /// The packed filters of channel block `b` (channels `16b..`).
    pub fn block(&self, b: usize) -> &[i8] {
        let len = if self.split { 2 * self.per } else { self.per };
        &self.data[b * len..(b + 1) * len]
    }
}

impl DwVnni {
    /// Plans `g` when this CPU has AVX-512 BW/VNNI/VBMI and the window suits the kernel
    /// (dilation 1, at most 8 taps wide, some output).
    pub fn new(g: &Window2d) -> Option<DwVnni> {
        let cpu = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vbmi");
        let fits = (g.dh, g.dw) == (1, 1)
            && g.kw <= 8
            && (1..=MAX_ROWS).contains(&g.kh)
            && g.oh > 0
            && g.ow > 0;
        if !(cpu && fits) {
            return None;
        }
        let groups = g.kw.div_ceil(4);
        let cols = (g.ow - 1) * g.sw + 4 * groups;
        let fit = BAND_BYTES / (cols * LANES);
        let band = if fit > g.kh {
            ((fit - g.kh) / g.sh + 1).clamp(1, g.oh)
        } else {
            1
        };
        Some(DwVnni {
            g: *g,
            groups,
            cols,
            band,
            bh: (band - 1) * g.sh + g.kh,
            planar: g.ow >= PLANAR_MIN_W && Self::planar_fits(g),
        })
    }

    /// Whether this geometry runs plane by plane (when its filters fit i8).
    pub fn is_planar(&self) -> bool {
        self.planar
    }

    /// This plan on the planar path or the blocked one (for tests and benchmarks; where the
    /// planar kernel does not take the geometry the blocked path stays).
    pub fn with_planar(mut self, planar: bool) -> DwVnni {
        self.planar = planar && Self::planar_fits(&self.g);
        self
    }

    /// Whether the planar kernel takes `g`: a 3×3 or 5×5 window whose 16 outputs' inputs
    /// lie within one 64-byte load.
    fn planar_fits(g: &Window2d) -> bool {
        let groups = g.kw.div_ceil(4);
        matches!((g.kh, g.kw), (3, 3) | (5, 5)) && 15 * g.sw + 4 * groups <= 64
    }

    /// Bytes of scratch one [`run_block`](Self::run_block) needs.
    pub fn scratch_bytes(&self) -> usize {
        self.bh * self.cols * LANES + self.g.ow.next_multiple_of(16) * LANES + 64
    }

    /// The filters (`[channel][kh·kw]`, weights minus their zero point) packed per block of 16
    /// channels as `[kh][groups][64]` i8: byte `4c + t` of group `q` is tap `4q + t` of
    /// channel `c` (split into a `hi` and a `lo` block when some weight does not fit i8). None
    /// when a weight lies outside −256…255.
    pub fn pack(&self, w: &[i32], channels: usize) -> Option<Filters> {
        let (kh, kw) = (self.g.kh, self.g.kw);
        if w.len() != channels * kh * kw || w.iter().any(|&v| !(-256..=255).contains(&v)) {
            return None;
        }
        let split = w.iter().any(|&v| !(-128..=127).contains(&v));
        let per = self.block_weights();
        let planes = if split { 2 } else { 1 };
        let mut data = vec![0i8; channels.div_ceil(LANES) * per * planes];
        for c in 0..channels {
            let (b, l) = (c / LANES, c % LANES);
            for ki in 0..kh {
                for kj in 0..kw {
                    let (q, t) = (kj / 4, kj % 4);
                    let at = b * per * planes + (ki * self.groups + q) * 64 + 4 * l + t;
                    let v = w[(c * kh + ki) * kw + kj];
                    if split {
                        data[at] = v.div_euclid(2) as i8;
                        data[at + per] = v.rem_euclid(2) as i8;
                    } else {
                        data[at] = v as i8;
                    }
                }
            }
        }
        Some(Filters { data, per, split })
    }

    /// Bytes of packed filters per block.
    pub fn block_weights(&self) -> usize {
        self.g.kh * self.groups * 64
    }

    /// Convolves `channels ≤ 16` consecutive channels: `x` holds their input planes (byte ^
    /// `xor` is the u8 value, zero point `zx`), `w` their block of [`pack`](Self::pack)ed
    /// filters ([`Filters::block`], split as [`Filters::split`] says) and `sums` each
    /// channel's Σw; channel `c`'s `acc·mult[c] + add[c]` is
    /// requantized by `kind` (byte outputs only) into its plane of `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_block(
        &self,
        channels: usize,
        x: &[u8],
        xor: u8,
        zx: i32,
        w: &[i8],
        split: bool,
        sums: &[i32],
        mult: &[f32],
        add: &[f32],
        kind: OutKind,
        out: &mut [u8],
        scratch: &mut [u8],
    ) {
        let g = &self.g;
        assert!(
            (1..=LANES).contains(&channels),
            "dw_vnni: block of {channels}"
        );
        assert!(
            x.len() >= channels * g.in_size(),
            "dw_vnni: input too small"
        );
        assert!(
            out.len() >= channels * g.out_size(),
            "dw_vnni: output too small"
        );
        assert!(
            w.len() >= self.block_weights() * if split { 2 } else { 1 },
            "dw_vnni: filters too small"
        );
        assert!(sums.len() >= channels && mult.len() >= channels && add.len() >= channels);
        assert!(
            scratch.len() >= self.scratch_bytes(),
            "dw_vnni: scratch too small"
        );
        let OutKind::Int { zp, lo, hi } = kind else {
            panic!("dw_vnni: byte outputs only");
        };
        let lane = |v: &[f32], c: usize| if c < channels { v[c] } else { 0.0 };
        let e = Epi {
            mult: std::array::from_fn(|c| lane(mult, c)),
            add: std::array::from_fn(|c| lane(add, c)),
            corr: std::array::from_fn(|c| if c < channels { -zx * sums[c] } else { 0 }),
            zp,
            lo,
            hi,
        };
        // SAFETY: `new` returned this plan only on a CPU with AVX-512 F/BW/VNNI/VBMI; every
        // length the kernel relies on is asserted above.
        unsafe {
            // Split filters go plane by plane as two i8 halves, `hi` and `hi + lo`, summed
            // into one accumulator: 3×3 windows on rows at least 56 wide (where that beat the
            // blocked path), every weight at most 254 (255 makes `hi + lo` 128).
            let planar = self.planar
                && (!split
                    || (self.g.kh == 3
                        && self.g.ow >= PLANAR_SPLIT_MIN_W
                        && halves_fit(w, self.block_weights())));
            match (planar, split) {
                (true, false) => self.planes::<false>(channels, x, xor, zx as u8, w, &e, out),
                (true, true) => self.planes::<true>(channels, x, xor, zx as u8, w, &e, out),
                (false, true) => {
                    self.block::<true>(channels, x, xor, zx as u8, w, &e, out, scratch)
                }
                (false, false) => {
                    self.block::<false>(channels, x, xor, zx as u8, w, &e, out, scratch)
                }
            }
        }
    }

    /// The block convolved one plane at a time, in place: for each 16 outputs of a row and
    /// each kernel row, one masked 64-byte load of the input row (the zero point outside it,
    /// whole rows of it above and below the plane), `vpermb` gathering each output's four taps
    /// (`j·stride + 4q + t`) into its 32-bit lane, and `vpdpbusd` with the channel's four
    /// weights broadcast; up to [`PLANAR_U`] runs of 16 outputs side by side, and at stride 1
    /// several output rows sharing each gathered input row. No scratch, no transposes; the
    /// same integer sum and the same epilogue as [`Self::block`], so the same bytes. 3×3 and
    /// 5×5 windows. Split filters (`TWO`, 3×3 only: weights in −256…254, u8 weights minus a
    /// zero point) take two `vpdpbusd` per gathered vector, with the halves `hi` and `hi + lo`
    /// of `w = 2·hi + lo`, into the same accumulator (the blocked path's second accumulator
    /// for `lo` ran out of registers here and lost: `CB_SPLIT=1 conv_bench "q dw"`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn planes<const TWO: bool>(
        &self,
        channels: usize,
        x: &[u8],
        xor: u8,
        pad: u8,
        w: &[i8],
        e: &Epi,
        out: &mut [u8],
    ) {
        match (self.g.kh, self.groups, TWO) {
            // Stride 1: several output rows per pass, sharing their input rows (fewer with
            // split filters, whose second weights take registers too).
            (3, 1, false) if self.g.sh == 1 => {
                self.planes_k::<false, 3, 1, 4, 1>(channels, x, xor, pad, w, e, out)
            }
            (3, 1, true) if self.g.sh == 1 => {
                self.planes_k::<true, 3, 1, 2, 1>(channels, x, xor, pad, w, e, out)
            }
            (5, 2, false) if self.g.sh == 1 => {
                self.planes_k::<false, 5, 2, 2, 1>(channels, x, xor, pad, w, e, out)
            }
            (3, 1, _) => self.planes_k::<TWO, 3, 1, 1, 0>(channels, x, xor, pad, w, e, out),
            (5, 2, false) => self.planes_k::<false, 5, 2, 1, 0>(channels, x, xor, pad, w, e, out),
            _ => unreachable!("dw_vnni: planar plans are 3x3 or 5x5, split filters 3x3"),
        }
    }

    /// [`Self::planes`] for `KH` kernel rows of `G` groups of four taps, `R` output rows per
    /// pass whose input rows are `S` apart (the stride when `R` > 1; unused when `R` = 1),
    /// split filters as two halves when `TWO`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
    #[allow(clippy::too_many_arguments)]
    // The loops index several arrays (weights, rows, accumulators) by the same counters, all
    // bounded by constants so they unroll.
    #[allow(clippy::needless_range_loop)]
    unsafe fn planes_k<
        const TWO: bool,
        const KH: usize,
        const G: usize,
        const R: usize,
        const S: usize,
    >(
        &self,
        channels: usize,
        x: &[u8],
        xor: u8,
        pad: u8,
        w: &[i8],
        e: &Epi,
        out: &mut [u8],
    ) {
        let g = &self.g;
        let (isz, osz) = (g.in_size(), g.out_size());
        let per = self.block_weights();
        // Group q's gather: lane j's byte t <- byte j·stride + 4q + t of the loaded window.
        // (Plain loops here: closures would not inherit the target features, and vectors
        // would cross calls through memory.)
        let mut idx = [_mm512_setzero_si512(); G];
        for (q, v) in idx.iter_mut().enumerate() {
            let mut b = [0u8; 64];
            for (i, x) in b.iter_mut().enumerate() {
                *x = ((i / 4) * g.sw + 4 * q + i % 4) as u8;
            }
            *v = _mm512_loadu_si512(b.as_ptr() as *const _);
        }
        // Bytes of the window 16 outputs read (`new` keeps it within 64).
        let need = lanes_below(15 * g.sw + 4 * G);
        let outside = _mm512_set1_epi8(pad as i8);
        let (fill, xv) = (
            _mm512_set1_epi8((pad ^ xor) as i8),
            _mm512_set1_epi8(xor as i8),
        );
        let q = Requant::new(e);
        // Channel c's four weights of a (kernel row, group) as one i32.
        let quad = |at: usize| {
            i32::from_le_bytes([w[at], w[at + 1], w[at + 2], w[at + 3]].map(|v| v as u8))
        };
        for c in 0..channels {
            let xp = &x[c * isz..(c + 1) * isz];
            let op = &mut out[c * osz..(c + 1) * osz];
            let mut wv = [[_mm512_setzero_si512(); G]; KH];
            let mut wv2 = [[_mm512_setzero_si512(); G]; KH];
            for ki in 0..KH {
                for q in 0..G {
                    let at = (ki * G + q) * 64 + 4 * c;
                    wv[ki][q] = _mm512_set1_epi32(quad(at));
                    if TWO {
                        // hi + lo, byte by byte (each at most 127: `halves_fit`).
                        let b: [u8; 4] =
                            std::array::from_fn(|t| w[at + t].wrapping_add(w[per + at + t]) as u8);
                        wv2[ki][q] = _mm512_set1_epi32(i32::from_le_bytes(b));
                    }
                }
            }
            let corr = _mm512_set1_epi32(e.corr[c]);
            let (mult, add) = (_mm512_set1_ps(e.mult[c]), _mm512_set1_ps(e.add[c]));
            // R output rows per pass: at stride 1 rows oy..oy + R read input rows
            // oy..oy + R + KH − 1 (less the top pad), each gathered once for all of them.
            for oy0 in (0..g.oh).step_by(R) {
                let nr = R.min(g.oh - oy0);
                // Input row i of the pass (None above or below the plane, or not needed).
                let mut rows: [Option<&[u8]>; 8] = [None; 8];
                for (i, r) in rows.iter_mut().enumerate().take((R - 1) * g.sh + KH) {
                    if let Some(iy) = (oy0 * g.sh + i).checked_sub(g.pt) {
                        *r = xp.get(iy * g.iw..(iy + 1) * g.iw);
                    }
                }
                let mut c0 = 0;
                while c0 < g.ow {
                    let runs = (g.ow - c0).div_ceil(16).min(PLANAR_U);
                    // Run k's window starts at input column s[k]; lane b holds s[k] + b.
                    let mut s = [0isize; PLANAR_U];
                    let mut mask = [0u64; PLANAR_U];
                    for k in 0..PLANAR_U {
                        s[k] = ((c0 + 16 * k) * g.sw) as isize - g.pl as isize;
                        let first = (-s[k]).max(0) as usize;
                        let end = (g.iw as isize - s[k]).clamp(0, 64) as usize;
                        mask[k] = need & lanes_below(end) & !lanes_below(first);
                    }
                    let mut acc = [[corr; PLANAR_U]; R];
                    // Input row i serves output row r of the pass through kernel row i − r·sh.
                    for i in 0..(R - 1) * S + KH {
                        for k in 0..PLANAR_U {
                            if k >= runs {
                                break;
                            }
                            let v = match rows[i] {
                                None => outside,
                                Some(row) => {
                                    // SAFETY: the lanes `mask[k]` keeps are columns 0..iw of
                                    // `row`; masked-off lanes are never accessed.
                                    let v = _mm512_mask_loadu_epi8(
                                        fill,
                                        mask[k],
                                        row.as_ptr().wrapping_offset(s[k]) as *const i8,
                                    );
                                    _mm512_xor_si512(v, xv)
                                }
                            };
                            for q in 0..G {
                                let vq = _mm512_permutexvar_epi8(idx[q], v);
                                for r in 0..R {
                                    if i < r * S || i - r * S >= KH {
                                        continue;
                                    }
                                    let ki = i - r * S;
                                    acc[r][k] = _mm512_dpbusd_epi32(acc[r][k], vq, wv[ki][q]);
                                    if TWO {
                                        acc[r][k] = _mm512_dpbusd_epi32(acc[r][k], vq, wv2[ki][q]);
                                    }
                                }
                            }
                        }
                    }
                    for r in 0..nr {
                        let orow = &mut op[(oy0 + r) * g.ow..(oy0 + r + 1) * g.ow];
                        for k in 0..runs {
                            let a = acc[r][k];
                            let b = requantize(a, mult, add, &q);
                            let at = c0 + 16 * k;
                            let n = 16.min(g.ow - at);
                            let d = &mut orow[at..at + n];
                            if n == 16 {
                                _mm_storeu_si128(d.as_mut_ptr() as *mut __m128i, b);
                            } else {
                                // SAFETY: `d` holds n bytes; only those are enabled.
                                _mm512_mask_storeu_epi8(
                                    d.as_mut_ptr() as *mut i8,
                                    lanes_below(n),
                                    _mm512_castsi128_si512(b),
                                );
                            }
                        }
                    }
                    c0 += 16 * runs;
                }
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const SPLIT: bool>(
        &self,
        channels: usize,
        x: &[u8],
        xor: u8,
        pad: u8,
        w: &[i8],
        e: &Epi,
        out: &mut [u8],
        scratch: &mut [u8],
    ) {
        let g = &self.g;
        let (buf, orow) = scratch.split_at_mut(self.bh * self.cols * LANES);
        // `vpermb`: lane c's byte t ← pixel t's channel c.
        let idx: [u8; 64] = std::array::from_fn(|i| ((i % 4) * 16 + i / 4) as u8);
        let idx = _mm512_loadu_si512(idx.as_ptr() as *const _);
        let mut wv = [_mm512_setzero_si512(); 2 * MAX_ROWS];
        let mut wl = [_mm512_setzero_si512(); 2 * MAX_ROWS];
        let per = self.block_weights();
        for i in 0..g.kh * self.groups {
            wv[i] = _mm512_loadu_si512(w[i * 64..].as_ptr() as *const _);
            if SPLIT {
                wl[i] = _mm512_loadu_si512(w[per + i * 64..].as_ptr() as *const _);
            }
        }
        let corr = _mm512_loadu_si512(e.corr.as_ptr() as *const _);
        let (mult, add) = (
            _mm512_loadu_ps(e.mult.as_ptr()),
            _mm512_loadu_ps(e.add.as_ptr()),
        );
        let q = Requant::new(e);
        let row_bytes = self.cols * LANES;
        for oy0 in (0..g.oh).step_by(self.band) {
            let rows = self.band.min(g.oh - oy0);
            let py0 = oy0 * g.sh;
            let bh = (rows - 1) * g.sh + g.kh;
            self.fill(channels, x, xor, pad, py0, bh, buf);
            for oy in oy0..oy0 + rows {
                let base = buf.as_ptr().add((oy * g.sh - py0) * row_bytes);
                for ox in 0..g.ow {
                    let (mut acc, mut acc_lo) = (corr, _mm512_setzero_si512());
                    for ki in 0..g.kh {
                        let r = base.add(ki * row_bytes + ox * g.sw * LANES);
                        for q in 0..self.groups {
                            // SAFETY: `cols` covers the last pixel's last group of four.
                            let v = _mm512_loadu_si512(r.add(q * 64) as *const _);
                            let v = _mm512_permutexvar_epi8(idx, v);
                            let i = ki * self.groups + q;
                            if SPLIT {
                                // Σx·hi here; the corrected sum is corr + 2·Σx·hi + Σx·lo.
                                acc = _mm512_dpbusd_epi32(acc, v, wv[i]);
                                acc_lo = _mm512_dpbusd_epi32(acc_lo, v, wl[i]);
                            } else {
                                acc = _mm512_dpbusd_epi32(acc, v, wv[i]);
                            }
                        }
                    }
                    if SPLIT {
                        // acc holds corr + Σx·hi: double the Σx·hi part only.
                        let sum_hi = _mm512_sub_epi32(acc, corr);
                        let twice = _mm512_slli_epi32(sum_hi, 1);
                        acc = _mm512_add_epi32(corr, _mm512_add_epi32(twice, acc_lo));
                    }
                    let b = requantize(acc, mult, add, &q);
                    _mm_storeu_si128(orow.as_mut_ptr().add(ox * LANES) as *mut __m128i, b);
                }
                store_row(g, orow, oy, out, channels);
            }
        }
    }

    /// Padded input rows `py0..py0 + bh` of the block as `[row][cols][16]` bytes, the padding
    /// (and lanes past `channels`) holding `pad`, the zero point.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn fill(
        &self,
        channels: usize,
        x: &[u8],
        xor: u8,
        pad: u8,
        py0: usize,
        bh: usize,
        buf: &mut [u8],
    ) {
        let g = &self.g;
        let row_bytes = self.cols * LANES;
        let isz = g.in_size();
        for r in 0..bh {
            let dst = &mut buf[r * row_bytes..(r + 1) * row_bytes];
            let iy = (py0 + r) as isize - g.pt as isize;
            if iy < 0 || iy >= g.ih as isize {
                dst.fill(pad);
                continue;
            }
            let iy = iy as usize;
            // Columns `pl .. pl + iw` hold the input; the rest is padding.
            let left = g.pl.min(self.cols);
            let right = (g.pl + g.iw).min(self.cols);
            dst[..left * LANES].fill(pad);
            dst[right * LANES..].fill(pad);
            let n = right.saturating_sub(left);
            let xor_v = _mm_set1_epi8(xor as i8);
            let mut j = 0;
            while j < n {
                let m = 16.min(n - j);
                let mut rows = [_mm_set1_epi8(pad as i8); 16];
                for (c, v) in rows.iter_mut().enumerate().take(channels) {
                    let s = &x[c * isz + iy * g.iw + j..][..m];
                    *v = if m == 16 {
                        _mm_xor_si128(_mm_loadu_si128(s.as_ptr() as *const __m128i), xor_v)
                    } else {
                        // A masked load of the row's last `m` bytes (the padding's value in
                        // the rest): no call to `memcpy` for the short rows of small planes.
                        let fill = _mm512_set1_epi8((pad ^ xor) as i8);
                        let t =
                            _mm512_mask_loadu_epi8(fill, lanes_below(m), s.as_ptr() as *const i8);
                        _mm_xor_si128(_mm512_castsi512_si128(t), xor_v)
                    };
                }
                let t = transpose16(rows);
                let at = (left + j) * LANES;
                let d = &mut dst[at..at + m * LANES];
                for (k, v) in t.iter().enumerate().take(m) {
                    // SAFETY: `d` holds `m` pixels of 16 bytes.
                    _mm_storeu_si128(d[k * LANES..].as_mut_ptr() as *mut __m128i, *v);
                }
                j += 16;
            }
        }
    }
}

/// Whether split filters (`hi` then `lo`, `per` bytes each) can run as the two i8 halves `hi`
/// and `hi + lo`: no weight is 255 (`hi` 127 with `lo` 1).
fn halves_fit(w: &[i8], per: usize) -> bool {
    w[..per]
        .iter()
        .zip(&w[per..2 * per])
        .all(|(&h, &l)| !(h == 127 && l == 1))
}

/// The epilogue's constants shared by all lanes, as vectors.
struct Requant {
    zp: __m512,
    lo: __m512,
    hi: __m512,
    magic: __m512,
}

impl Requant {
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn new(e: &Epi) -> Requant {
        Requant {
            zp: _mm512_set1_ps(e.zp),
            lo: _mm512_set1_ps(e.lo),
            hi: _mm512_set1_ps(e.hi),
            magic: _mm512_set1_ps(12_582_912.0),
        }
    }
}

/// The requantizing epilogue of 16 accumulators, operation for operation as the f32-plan
/// path's (`super::depthwise`): `acc·mult + add`, `+ zp`, max `lo`, min `hi`, `+ MAGIC` (round
/// half to even), the low bytes. Both VNNI paths use it, so their bytes are the same.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn requantize(acc: __m512i, mult: __m512, add: __m512, q: &Requant) -> __m128i {
    let mut y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult), add);
    y = _mm512_add_ps(y, q.zp);
    y = _mm512_min_ps(q.hi, _mm512_max_ps(q.lo, y));
    y = _mm512_add_ps(y, q.magic);
    _mm512_cvtepi32_epi8(_mm512_castps_si512(y))
}

/// A mask of the lanes below `n` (all 64 from 64 on).
fn lanes_below(n: usize) -> u64 {
    if n >= 64 {
        !0
    } else {
        (1u64 << n) - 1
    }
}

/// The epilogue's per-lane constants.
struct Epi {
    mult: [f32; LANES],
    add: [f32; LANES],
    corr: [i32; LANES],
    zp: f32,
    lo: f32,
    hi: f32,
}

/// Row `oy` of the block's output planes from `orow` (`[ow][16]` bytes), through 16 × 16
/// transposes.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store_row(g: &Window2d, orow: &[u8], oy: usize, out: &mut [u8], channels: usize) {
    let (osz, ow) = (g.out_size(), g.ow);
    let mut j = 0;
    while j < ow {
        let m = 16.min(ow - j);
        let mut px = [_mm_setzero_si128(); 16];
        for (k, v) in px.iter_mut().enumerate().take(m) {
            *v = _mm_loadu_si128(orow[(j + k) * LANES..].as_ptr() as *const __m128i);
        }
        let t = transpose16(px);
        for (c, v) in t.iter().enumerate().take(channels) {
            let at = c * osz + oy * ow + j;
            let d = &mut out[at..at + m];
            if m == 16 {
                _mm_storeu_si128(d.as_mut_ptr() as *mut __m128i, *v);
            } else {
                // A masked store of `m` bytes (the 512-bit form: AVX-512BW, no VL needed).
                _mm512_mask_storeu_epi8(
                    d.as_mut_ptr() as *mut i8,
                    lanes_below(m),
                    _mm512_castsi128_si512(*v),
                );
            }
        }
        j += 16;
    }
}

/// Transposes a 16 × 16 byte matrix held as 16 rows: `out[p]` byte `c` = `rows[c]` byte `p`.
#[inline(always)]
unsafe fn transpose16(r: [__m128i; 16]) -> [__m128i; 16] {
    // SAFETY (whole body): SSE2 only, always present on x86-64.
    // Bytes of row pairs, then 16-, 32- and 64-bit units: after the four stages register p
    // holds pixel p's 16 rows (see the module tests).
    let mut s1 = [_mm_setzero_si128(); 16];
    for i in 0..8 {
        s1[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        s1[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    // s2[j][q]: rows 4j..4j+3, pixels 4q..4q+3.
    let mut s2 = [[_mm_setzero_si128(); 4]; 4];
    for j in 0..4 {
        for h in 0..2 {
            let (a, b) = (s1[4 * j + h], s1[4 * j + 2 + h]);
            s2[j][2 * h] = _mm_unpacklo_epi16(a, b);
            s2[j][2 * h + 1] = _mm_unpackhi_epi16(a, b);
        }
    }
    // s3[jj][pp]: rows 8jj..8jj+7, pixels 2pp, 2pp+1.
    let mut s3 = [[_mm_setzero_si128(); 8]; 2];
    for jj in 0..2 {
        for q in 0..4 {
            let (a, b) = (s2[2 * jj][q], s2[2 * jj + 1][q]);
            s3[jj][2 * q] = _mm_unpacklo_epi32(a, b);
            s3[jj][2 * q + 1] = _mm_unpackhi_epi32(a, b);
        }
    }
    let mut out = [_mm_setzero_si128(); 16];
    for pp in 0..8 {
        out[2 * pp] = _mm_unpacklo_epi64(s3[0][pp], s3[1][pp]);
        out[2 * pp + 1] = _mm_unpackhi_epi64(s3[0][pp], s3[1][pp]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::DepthwisePlan;
    use crate::qgemm::depthwise::{self, PlaneOut};

    fn window(ih: usize, iw: usize, k: usize, s: usize, p: [usize; 4]) -> Window2d {
        let oh = (ih + p[0] + p[2] - k) / s + 1;
        let ow = (iw + p[1] + p[3] - k) / s + 1;
        Window2d {
            ih,
            iw,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            dh: 1,
            dw: 1,
            pt: p[0],
            pl: p[1],
            pb: p[2],
            pr: p[3],
            oh,
            ow,
        }
    }

    #[test]
    fn transpose16_transposes() {
        let m: Vec<[u8; 16]> = (0..16)
            .map(|r| std::array::from_fn(|c| (r * 16 + c) as u8))
            .collect();
        // SAFETY: SSE2 is baseline on x86-64.
        let t = unsafe {
            transpose16(std::array::from_fn(|r| {
                _mm_loadu_si128(m[r].as_ptr() as *const __m128i)
            }))
        };
        for (p, v) in t.iter().enumerate() {
            let mut b = [0u8; 16];
            // SAFETY: as above.
            unsafe { _mm_storeu_si128(b.as_mut_ptr() as *mut __m128i, *v) };
            for (c, &x) in b.iter().enumerate() {
                assert_eq!(x, m[c][p], "pixel {p} channel {c}");
            }
        }
    }

    /// Every byte equals the fp32-plan path's (which is tested against the definition).
    #[test]
    fn matches_the_blocked_fp32_path_bit_for_bit() {
        let geoms = [
            window(112, 112, 3, 2, [0, 0, 1, 1]),
            window(28, 28, 3, 1, [1, 1, 1, 1]),
            window(14, 14, 5, 1, [2, 2, 2, 2]),
            window(15, 13, 5, 2, [1, 2, 2, 1]),
            window(9, 40, 3, 1, [0, 0, 0, 0]),
            window(7, 7, 7, 1, [3, 3, 3, 3]),
            // The planar path's edges: rows of whole and partial runs of 16 outputs, planes
            // whose rows are not a whole number of passes, TensorFlow pads, strides up to 4,
            // planes shorter than the window; 7 and 8 taps stay blocked.
            window(57, 57, 3, 1, [1, 1, 1, 1]),
            window(112, 112, 3, 1, [1, 1, 1, 1]),
            window(56, 61, 5, 2, [1, 1, 2, 2]),
            window(30, 33, 7, 2, [3, 3, 3, 3]),
            window(20, 47, 8, 3, [4, 5, 3, 2]),
            window(2, 64, 3, 4, [1, 1, 1, 1]),
            window(3, 70, 5, 1, [2, 2, 2, 2]),
            window(31, 40, 3, 1, [0, 1, 2, 1]),
            // Unequal strides, and stride 3 (a reviewer's cases).
            Window2d {
                sw: 2,
                ow: (61 + 2 - 3) / 2 + 1,
                ..window(20, 61, 3, 1, [1, 1, 1, 1])
            },
            Window2d {
                sh: 2,
                oh: (41 + 2 - 3) / 2 + 1,
                ..window(41, 45, 3, 1, [1, 1, 1, 1])
            },
            window(30, 100, 5, 3, [2, 2, 2, 2]),
            window(30, 100, 3, 3, [1, 1, 1, 1]),
            // Stride 4 and 5 taps: the 16 outputs' window (68 bytes) does not fit one load.
            window(9, 80, 5, 4, [2, 2, 2, 2]),
        ];
        let mut seed = 1u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut planar = 0;
        for (gi, g) in geoms.iter().enumerate() {
            let Some(chosen) = DwVnni::new(g) else {
                eprintln!("dw_vnni: skipped, this CPU lacks AVX-512 VNNI/VBMI");
                return;
            };
            // The plan `new` chose, then each path forced (where the planar one applies).
            for p in [chosen, chosen.with_planar(false), chosen.with_planar(true)] {
                planar += p.is_planar() as usize;
                // The last two have weights past i8 (u8 weights minus a zero point): split filters.
                for (channels, xor, zx, wide) in [
                    (16, 0u8, 7i32, false),
                    (5, 0x80, 131, false),
                    (16, 0x80, 128, false),
                    (16, 0, 3, true),
                    (7, 0x80, 200, true),
                ] {
                    let x: Vec<u8> = (0..channels * g.in_size()).map(|_| next() as u8).collect();
                    // Split filters: −256…254 with 16 channels (the planar path's two halves),
                    // and with a 255 among 7 channels (too wide for the halves: that block
                    // stays on the blocked path).
                    let mut w: Vec<i32> = (0..channels * g.taps())
                        .map(|_| match wide {
                            false => (next() % 255) as i32 - 127,
                            true => (next() % 511) as i32 - 256,
                        })
                        .collect();
                    if wide && channels == 7 {
                        w[3] = 255;
                    }
                    let sums: Vec<i32> = w.chunks(g.taps()).map(|c| c.iter().sum()).collect();
                    let mult: Vec<f32> = (0..channels).map(|c| 0.0007 * (c + 1) as f32).collect();
                    let add: Vec<f32> = (0..channels).map(|c| c as f32 - 3.5).collect();
                    let kind = OutKind::Int {
                        zp: 11.0,
                        lo: 0.0,
                        hi: 255.0,
                    };
                    let packed = p.pack(&w, channels).expect("weights within -256..=255");
                    assert_eq!(packed.split(), wide);
                    let mut got = vec![0u8; channels * g.out_size()];
                    let mut scratch = vec![0u8; p.scratch_bytes()];
                    p.run_block(
                        channels,
                        &x,
                        xor,
                        zx,
                        packed.block(0),
                        packed.split(),
                        &sums,
                        &mult,
                        &add,
                        kind,
                        &mut got,
                        &mut scratch,
                    );
                    let plan = DepthwisePlan::new(g);
                    let mut want = vec![0u8; channels * g.out_size()];
                    let mut sc = vec![0f32; plan.scratch_len()];
                    let wf = depthwise::taps_f32(&w);
                    let mut c0 = 0;
                    while c0 < channels {
                        let n = plan.lanes().min(channels - c0);
                        let o = &mut want[c0 * g.out_size()..];
                        depthwise::run_block(
                            &plan,
                            n,
                            &x[c0 * g.in_size()..],
                            xor,
                            zx,
                            &wf[c0 * g.taps()..],
                            &mult[c0..],
                            &add[c0..],
                            kind,
                            PlaneOut::Bytes(o),
                            &mut sc,
                        );
                        c0 += n;
                    }
                    assert_eq!(
                        got,
                        want,
                        "geometry {gi}, planar {}, {channels} channels, xor {xor}, wide {wide}",
                        p.is_planar()
                    );
                }
            }
        }
        // Planar twice (chosen, then forced) for the 3×3 and 5×5 windows at least 28 outputs
        // wide (12), once (forced) for the 3 narrower, never for 7 and 8 taps or for the last
        // (its window exceeds a load).
        assert_eq!(planar, 2 * 12 + 3, "geometries on the planar path");
    }
}

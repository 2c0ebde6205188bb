//! Direct convolution for layers with few input taps (`C·kh·kw` ≤ [`MAX_TAPS`], stride 1 or
//! 2 in both directions, dilation 1, ungrouped): a network's first layer on a grey or colour
//! image.
//!
//! im2col turns such a layer into a product only `C·kh·kw` deep (9 for the seed CNN's first
//! layer, 27 for EfficientNet's stem), where the micro-kernel's loads and stores of its output
//! tile outweigh its multiply-adds. Here each output row runs in segments of `L` (16) pixels: the
//! segment's inputs for one tap are one contiguous vector of a zero-padded copy of the planes,
//! loaded once and multiplied into the accumulators of `MB` (8) output channels at a time
//! (weights packed at build as `[channel block][tap][MB]`), and the sums plus bias are stored
//! straight into the output planes. With stride 2 the padded copy splits each plane into its
//! even and odd columns (two phases), so a tap's inputs for consecutive outputs are again
//! consecutive floats. On AVX-512 a block is two segments (32 pixels) × 8 channels in 16
//! registers with masked stores at the row's end; the portable body (other CPUs) is correct
//! but LLVM keeps its accumulators on the stack, so the runtime picks this strategy on
//! AVX-512 only.

use super::Window2d;
use crate::disjoint::Disjoint;

/// Most input taps (`C·kh·kw`) the direct kernel takes.
pub const MAX_TAPS: usize = 32;

/// A run of output rows.
type Rows = std::ops::Range<usize>;

/// Output pixels per segment (one AVX-512 vector, two AVX2 or four NEON ones).
const L: usize = 16;

/// Output channels per block: `MB` accumulators of `L` lanes.
const MB: usize = 8;

/// A direct convolution planned for one geometry, with its weights packed.
#[derive(Debug, Clone)]
pub struct DirectConv {
    g: Window2d,
    c: usize,
    m: usize,
    /// Stride (both directions): the padded planes hold `s` column phases each.
    s: usize,
    /// Rows and columns of one phase of a zero-padded input plane: every segment's taps read
    /// inside.
    hp: usize,
    wp: usize,
    /// `[m / MB][taps][MB]`, zeros past `m`.
    w: Vec<f32>,
}

impl DirectConv {
    /// Whether the direct kernel takes this convolution of `c` input channels.
    pub fn fits(g: &Window2d, c: usize) -> bool {
        g.sh == g.sw
            && (1..=2).contains(&g.sh)
            && (g.dh, g.dw) == (1, 1)
            && c * g.kh * g.kw <= MAX_TAPS
            && g.ow >= 1
    }

    /// Packs `w` (`m × c × kh × kw`) for `g`. Panics unless [`DirectConv::fits`].
    pub fn new(w: &[f32], c: usize, m: usize, g: Window2d) -> DirectConv {
        assert!(
            DirectConv::fits(&g, c),
            "direct convolution: {g:?} with {c} channels"
        );
        let taps = c * g.kh * g.kw;
        assert!(w.len() >= m * taps, "direct convolution: weights");
        let mut packed = vec![0.0f32; m.div_ceil(MB) * taps * MB];
        for (ch, wm) in w.chunks_exact(taps).take(m).enumerate() {
            let (blk, j) = (ch / MB, ch % MB);
            for (t, &v) in wm.iter().enumerate() {
                packed[(blk * taps + t) * MB + j] = v;
            }
        }
        let st = g.sh;
        DirectConv {
            g,
            c,
            m,
            s: st,
            hp: (g.oh - 1) * st + g.kh,
            wp: g.ow.next_multiple_of(2 * L) + (g.kw - 1) / st,
            w: packed,
        }
    }

    /// Floats of one padded input plane (all its phases).
    fn plane(&self) -> usize {
        self.s * self.hp * self.wp
    }

    /// The window this plan convolves.
    pub fn window(&self) -> &Window2d {
        &self.g
    }

    /// f32s of scratch one image needs (its zero-padded planes).
    pub fn scratch_len(&self) -> usize {
        self.c * self.plane()
    }

    /// Copies one image's `c` planes into `pad` (`scratch_len` floats), zero-padded (and with
    /// stride 2 split into even and odd padded columns). Every float of `pad` is written, so
    /// it needs no clearing first.
    pub fn pad(&self, x: &[f32], pad: &mut [f32]) {
        self.pad_par(x, pad, 1)
    }

    /// [`DirectConv::pad`] with the phase planes split between up to `threads` threads.
    pub fn pad_par(&self, x: &[f32], pad: &mut [f32], threads: usize) {
        let g = &self.g;
        let (isz, psz) = (g.ih * g.iw, self.hp * self.wp);
        let x = &x[..self.c * isz];
        let pad = &mut pad[..self.scratch_len()];
        let phases = self.c * self.s;
        let parts = threads.min(phases).max(1);
        let one = |k: usize, dst: &mut [f32]| {
            let (plane, q) = (&x[k / self.s * isz..][..isz], k % self.s);
            #[cfg(target_arch = "x86_64")]
            if crate::gemm::Kernel::detect() == crate::gemm::Kernel::Avx512 {
                // SAFETY: the CPU runs AVX-512F (checked).
                return unsafe { self.phase_avx512(plane, q, dst) };
            }
            self.phase(plane, q, dst)
        };
        if parts == 1 {
            for (k, dst) in pad.chunks_exact_mut(psz).enumerate() {
                one(k, dst);
            }
            return;
        }
        let out = crate::disjoint::Disjoint::new(pad);
        crate::gemm::par_for(parts, &|t| {
            for k in t * phases / parts..(t + 1) * phases / parts {
                // SAFETY: phase plane k is written by part t alone.
                one(k, unsafe { out.part(k * psz, psz) });
            }
        });
    }

    /// Phase `q` of one padded plane (`hp × wp` floats) from the input plane `x`: padded
    /// column `q + s·j` of each row, which is input column `q + s·j − pl`.
    fn phase(&self, x: &[f32], q: usize, dst: &mut [f32]) {
        let g = &self.g;
        for (py, row) in dst.chunks_exact_mut(self.wp).enumerate() {
            let src = py
                .checked_sub(g.pt)
                .filter(|&iy| iy < g.ih)
                .map(|iy| &x[iy * g.iw..][..g.iw]);
            for (j, d) in row.iter_mut().enumerate() {
                let ix = (q + self.s * j).wrapping_sub(g.pl);
                *d = src.and_then(|r| r.get(ix)).copied().unwrap_or(0.0);
            }
        }
    }

    /// [`DirectConv::phase`] 16 floats of a row at a time: masked loads of the input row (two,
    /// then the even or odd lanes picked by one permutation, with stride 2).
    ///
    /// # Safety
    /// The CPU runs AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn phase_avx512(&self, x: &[f32], q: usize, dst: &mut [f32]) {
        use std::arch::x86_64::*;
        let g = &self.g;
        let (wp, s) = (self.wp, self.s);
        // Lanes of a vector whose input columns `from + i` lie in 0..iw.
        let valid = |from: isize| -> __mmask16 {
            let lo = (-from).clamp(0, 16) as u32;
            let hi = (g.iw as isize - from).clamp(0, 16) as u32;
            ((1u32 << hi) - (1u32 << lo)) as __mmask16
        };
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        for (py, row) in dst.chunks_exact_mut(wp).enumerate() {
            let src = py
                .checked_sub(g.pt)
                .filter(|&iy| iy < g.ih)
                .map(|iy| &x[iy * g.iw..][..g.iw]);
            for j0 in (0..wp).step_by(16) {
                let n = (wp - j0).min(16);
                let store = ((1u32 << n) - 1) as __mmask16;
                // Input column of lane 0: q + s·j0 − pl.
                let from = (q + s * j0) as isize - g.pl as isize;
                let v = match src {
                    None => _mm512_setzero_ps(),
                    Some(r) => {
                        let p = r.as_ptr().wrapping_offset(from);
                        // SAFETY: only lanes whose columns lie in the row are loaded; the
                        // others are masked off and cannot fault.
                        unsafe {
                            let a = _mm512_maskz_loadu_ps(valid(from), p);
                            if s == 1 {
                                a
                            } else {
                                let b = _mm512_maskz_loadu_ps(valid(from + 16), p.wrapping_add(16));
                                _mm512_permutex2var_ps(a, evens, b)
                            }
                        }
                    }
                };
                // SAFETY: lanes j0..j0 + n of this row (masked).
                unsafe { _mm512_mask_storeu_ps(row.as_mut_ptr().add(j0), store, v) };
            }
        }
    }

    /// Output rows `rows` of one image: `y[m][oy][ox] = Σ w·x + bias[m]` from its padded planes
    /// `pad` (see [`DirectConv::pad`]) into its `m` output planes `y` (each `oh × ow`). With
    /// `clamp` = `(lo, hi)` every sum is clamped as it is stored (`max` then `min`, a NaN
    /// giving `lo`): a fused ReLU, ReLU6 or Clip, with no pass over the output afterwards.
    pub fn run_rows(
        &self,
        pad: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        rows: std::ops::Range<usize>,
        clamp: Option<(f32, f32)>,
    ) {
        let k = crate::gemm::Kernel::detect();
        self.run_rows_with(k, pad, bias, y, rows, clamp)
    }

    /// [`DirectConv::run_rows`] with a chosen kernel family (tests run every one the CPU
    /// supports).
    pub(crate) fn run_rows_with(
        &self,
        kernel: crate::gemm::Kernel,
        pad: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        rows: Rows,
        clamp: Option<(f32, f32)>,
    ) {
        let g = &self.g;
        assert!(pad.len() >= self.scratch_len() && y.len() >= self.m * g.oh * g.ow);
        assert!(rows.end <= g.oh && bias.is_none_or(|b| b.len() >= self.m));
        assert!(crate::gemm::Kernel::supported().contains(&kernel));
        let y = Disjoint::new(y);
        // SAFETY: `y` is borrowed mutably for the call.
        unsafe { self.rows_out(kernel, pad, bias, y, rows, clamp) }
    }

    /// [`DirectConv::run_rows_with`] into a raw output view.
    ///
    /// # Safety
    /// No other thread writes or reads rows `rows` of the output planes meanwhile.
    unsafe fn rows_out(
        &self,
        kernel: crate::gemm::Kernel,
        pad: &[f32],
        bias: Option<&[f32]>,
        y: Disjoint,
        rows: Rows,
        clamp: Option<(f32, f32)>,
    ) {
        // The clamp is a const parameter, so the unclamped code is the same as without it.
        let Some((lo, hi)) = clamp else {
            return self.dispatch::<false>(kernel, pad, bias, y, rows, 0.0, 0.0);
        };
        self.dispatch::<true>(kernel, pad, bias, y, rows, lo, hi)
    }

    /// All output rows of one image, split between up to `threads` threads (each a run of
    /// rows of every plane); otherwise as [`DirectConv::run_rows`].
    pub fn run_par(
        &self,
        pad: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        clamp: Option<(f32, f32)>,
        threads: usize,
    ) {
        let g = &self.g;
        let parts = threads.min(g.oh).max(1);
        if parts == 1 {
            return self.run_rows(pad, bias, y, 0..g.oh, clamp);
        }
        assert!(pad.len() >= self.scratch_len() && y.len() >= self.m * g.oh * g.ow);
        assert!(bias.is_none_or(|b| b.len() >= self.m));
        let kernel = crate::gemm::Kernel::detect();
        let y = Disjoint::new(y);
        crate::gemm::par_for(parts, &|t| {
            let rows = t * g.oh / parts..(t + 1) * g.oh / parts;
            // SAFETY: the parts' row ranges are disjoint, and `y` is borrowed mutably for the
            // whole call.
            unsafe { self.rows_out(kernel, pad, bias, y, rows, clamp) };
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch<const C: bool>(
        &self,
        kernel: crate::gemm::Kernel,
        pad: &[f32],
        bias: Option<&[f32]>,
        y: Disjoint,
        rows: Rows,
        lo: f32,
        hi: f32,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::gemm::Kernel;
            type Args<'a> = (&'a [f32], Option<&'a [f32]>, Disjoint, Rows, f32, f32);
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512<const C: bool>(d: &DirectConv, (p, b, y, r, lo, hi): Args) {
                d.rows::<true, true, C>(p, b, y, r, lo, hi)
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2<const C: bool>(d: &DirectConv, (p, b, y, r, lo, hi): Args) {
                d.rows::<true, false, C>(p, b, y, r, lo, hi)
            }
            let args = (pad, bias, y, rows, lo, hi);
            match kernel {
                // SAFETY: `kernel` is one this CPU runs (asserted by the caller).
                Kernel::Avx512 => return unsafe { avx512::<C>(self, args) },
                // SAFETY: as above.
                Kernel::Avx2 => return unsafe { avx2::<C>(self, args) },
                _ => {}
            }
            let (pad, bias, y, rows, lo, hi) = args;
            self.rows::<false, false, C>(pad, bias, y, rows, lo, hi)
        }
        // NEON has fused multiply-add in its baseline; elsewhere `a·b + c` rounds twice.
        // (One body serves every family there.)
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = kernel;
            self.rows::<{ cfg!(target_arch = "aarch64") }, false, C>(pad, bias, y, rows, lo, hi)
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn rows<const FMA: bool, const AVX512: bool, const C: bool>(
        &self,
        pad: &[f32],
        bias: Option<&[f32]>,
        y: Disjoint,
        rows: Rows,
        lo: f32,
        hi: f32,
    ) {
        let g = &self.g;
        let (taps, osz, plane, s) = (self.c * g.kh * g.kw, g.oh * g.ow, self.plane(), self.s);
        // Each tap's offset in the padded planes, relative to the segment's first pixel: tap
        // (ky, kx) of output column x reads padded column s·x + kx, i.e. column x + kx / s of
        // phase kx % s.
        let mut offs = [0usize; MAX_TAPS];
        for (t, o) in offs.iter_mut().take(taps).enumerate() {
            let (c, k) = (t / (g.kh * g.kw), t % (g.kh * g.kw));
            let (ky, kx) = (k / g.kw, k % g.kw);
            *o = c * plane + (kx % s) * self.hp * self.wp + ky * self.wp + kx / s;
        }
        let offs = &offs[..taps];
        let reach = offs.iter().copied().max().unwrap_or(0);
        #[cfg(target_arch = "x86_64")]
        if AVX512 {
            for oy in rows {
                for x0 in (0..g.ow).step_by(2 * L) {
                    let base = s * oy * self.wp + x0;
                    let segment = &pad[base..base + reach + 2 * L];
                    for (blk, wb) in self.w.chunks_exact(taps * MB).enumerate() {
                        let m0 = blk * MB;
                        let b: [f32; MB] = std::array::from_fn(|j| {
                            bias.and_then(|b| b.get(m0 + j)).copied().unwrap_or(0.0)
                        });
                        let at = m0 * osz + oy * g.ow + x0;
                        let (mb, r) = (MB.min(self.m - m0), (2 * L).min(g.ow - x0));
                        // SAFETY: AVX512 is true only inside `run_rows`'s AVX-512 body.
                        unsafe {
                            block_avx512::<C>(segment, offs, wb, &b, y, at, osz, mb, r, lo, hi)
                        };
                    }
                }
            }
            return;
        }
        for oy in rows {
            for x0 in (0..g.ow).step_by(L) {
                let r = L.min(g.ow - x0);
                let base = s * oy * self.wp + x0;
                let segment = &pad[base..base + reach + L];
                for (blk, wb) in self.w.chunks_exact(taps * MB).enumerate() {
                    let m0 = blk * MB;
                    let b: [f32; MB] = std::array::from_fn(|j| {
                        bias.and_then(|b| b.get(m0 + j)).copied().unwrap_or(0.0)
                    });
                    let mut acc = segment_sums::<FMA>(segment, offs, wb, b);
                    if C {
                        for v in acc.iter_mut().flatten() {
                            let t = if *v > lo { *v } else { lo };
                            *v = if t < hi { t } else { hi };
                        }
                    }
                    for (j, a) in acc.iter().enumerate().take(self.m - m0) {
                        let at = (m0 + j) * osz + oy * g.ow + x0;
                        // SAFETY: these pixels are in this call's rows (the caller's
                        // contract).
                        let d = unsafe { y.part(at, r) };
                        if r == L {
                            let d: &mut [f32; L] = d.try_into().expect("L");
                            *d = *a;
                        } else {
                            // A short last segment: element by element (no memcpy call).
                            for (i, &v) in a.iter().enumerate() {
                                if let Some(d) = d.get_mut(i) {
                                    *d = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One segment's sums for one block of `MB` channels: `b[j] + Σ_t w[t][j] · x[offs[t]..][..L]`.
#[inline(always)]
fn segment_sums<const FMA: bool>(
    segment: &[f32],
    offs: &[usize],
    w: &[f32],
    b: [f32; MB],
) -> [[f32; L]; MB] {
    assert!(w.len() >= offs.len() * MB && offs.iter().all(|&o| o + L <= segment.len()));
    // The bias is added after the taps, as a product followed by its bias adds it: the sums
    // round as im2col + GEMM's do (and onnxruntime's), which a quantized network's rounding
    // can tell apart.
    let mut acc = [[0.0f32; L]; MB];
    for (&o, wt) in offs.iter().zip(w.chunks_exact(MB)) {
        let xv: &[f32; L] = segment[o..o + L].try_into().expect("L");
        for (a, &wv) in acc.iter_mut().zip(wt) {
            for (a, &x) in a.iter_mut().zip(xv) {
                *a = if FMA { wv.mul_add(x, *a) } else { wv * x + *a };
            }
        }
    }
    for (a, &bj) in acc.iter_mut().zip(&b) {
        for v in a.iter_mut() {
            *v += bj;
        }
    }
    acc
}

/// Two segments (`2L` pixels from `segment`'s start) of one block of `MB` channels, stored
/// straight into `y` at `at + j·osz` for the first `mb` channels, `r` pixels each (masked).
///
/// # Safety
/// The CPU runs AVX-512F.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block_avx512<const C: bool>(
    segment: &[f32],
    offs: &[usize],
    w: &[f32],
    b: &[f32; MB],
    y: Disjoint,
    at: usize,
    osz: usize,
    mb: usize,
    r: usize,
    cmin: f32,
    cmax: f32,
) {
    use std::arch::x86_64::*;
    assert!(w.len() >= offs.len() * MB && offs.iter().all(|&o| o + 2 * L <= segment.len()));
    assert!((1..=MB).contains(&mb) && (1..=2 * L).contains(&r));
    // SAFETY: every load is inside `segment` or `w` (asserted above) and every store inside
    // its channel's `r` pixels of `y` (`Disjoint::part` checks them; the stores are masked to
    // `r` pixels), which are this call's alone; AVX-512F is the caller's contract.
    unsafe {
        // The bias after the taps, as in `segment_sums`.
        let mut lo = [_mm512_setzero_ps(); MB];
        let mut hi = lo;
        let (x, wp) = (segment.as_ptr(), w.as_ptr());
        for (t, &o) in offs.iter().enumerate() {
            let (x0, x1) = (_mm512_loadu_ps(x.add(o)), _mm512_loadu_ps(x.add(o + L)));
            for j in 0..MB {
                let wv = _mm512_set1_ps(*wp.add(t * MB + j));
                lo[j] = _mm512_fmadd_ps(wv, x0, lo[j]);
                hi[j] = _mm512_fmadd_ps(wv, x1, hi[j]);
            }
        }
        for j in 0..MB {
            let bj = _mm512_set1_ps(b[j]);
            lo[j] = _mm512_add_ps(lo[j], bj);
            hi[j] = _mm512_add_ps(hi[j], bj);
        }
        let mask = |n: usize| -> __mmask16 { ((1u32 << n.min(L)) - 1) as __mmask16 };
        let (m0, m1) = (mask(r), mask(r.saturating_sub(L)));
        if C {
            // `max(v, cmin)` gives `cmin` for a NaN `v` (its second operand), as `v > cmin`
            // does in the portable body; then `min(t, cmax)`.
            let (vmin, vmax) = (_mm512_set1_ps(cmin), _mm512_set1_ps(cmax));
            for j in 0..MB {
                lo[j] = _mm512_min_ps(_mm512_max_ps(lo[j], vmin), vmax);
                hi[j] = _mm512_min_ps(_mm512_max_ps(hi[j], vmin), vmax);
            }
        }
        for j in 0..mb {
            let p = y.part(at + j * osz, r).as_mut_ptr();
            _mm512_mask_storeu_ps(p, m0, lo[j]);
            if m1 != 0 {
                _mm512_mask_storeu_ps(p.add(L), m1, hi[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(ih: usize, iw: usize, k: usize, pad: usize, s: usize) -> Window2d {
        Window2d {
            ih,
            iw,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            dh: 1,
            dw: 1,
            pt: pad,
            pl: pad,
            pb: pad,
            pr: pad,
            oh: (ih + 2 * pad - k) / s + 1,
            ow: (iw + 2 * pad - k) / s + 1,
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed * 97) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_the_definition() {
        // (C, M, ih, iw, k, pad, stride): segment tails, several channel blocks, a partial
        // block, asymmetric planes, 1×1 and 5×5 windows, 1-D; stride 2 with odd and even
        // planes, rows longer than two segments (EfficientNet's stem at a smaller size).
        for &(c, m, ih, iw, k, pad, st) in &[
            (1, 32, 28, 28, 3, 0, 1),
            (3, 13, 9, 37, 3, 1, 1),
            (1, 8, 5, 16, 5, 2, 1),
            (2, 9, 7, 3, 1, 0, 1),
            (1, 5, 1, 40, 3, 1, 1),
            (3, 16, 17, 17, 3, 1, 1),
            (3, 32, 70, 70, 3, 1, 2),
            (3, 12, 9, 21, 3, 1, 2),
            (1, 8, 12, 75, 5, 2, 2),
            (2, 8, 6, 6, 2, 0, 2),
        ] {
            let g = window(ih, iw, k, pad, st);
            let x = values(c * ih * iw, 1);
            let w = values(m * c * k * k, 2);
            let b = values(m, 3);
            let d = DirectConv::new(&w, c, m, g);
            let mut pad_buf = vec![f32::NAN; d.scratch_len()];
            d.pad(&x, &mut pad_buf);
            // Two calls over split rows, as two threads would.
            let half = g.oh / 2;
            for &kernel in crate::gemm::Kernel::supported() {
                let mut y = vec![f32::NAN; m * g.oh * g.ow + 3];
                d.run_rows_with(kernel, &pad_buf, Some(&b), &mut y, 0..half, None);
                d.run_rows_with(kernel, &pad_buf, Some(&b), &mut y, half..g.oh, None);
                // The same with a fused clamp.
                let mut yc = vec![f32::NAN; m * g.oh * g.ow];
                d.run_rows_with(
                    kernel,
                    &pad_buf,
                    Some(&b),
                    &mut yc,
                    0..g.oh,
                    Some((-0.25, 0.5)),
                );
                for mo in 0..m {
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let mut want = b[mo] as f64;
                            for ci in 0..c {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let (iy, ix) = (oy * st + ky, ox * st + kx);
                                        if iy < pad || ix < pad || iy - pad >= ih || ix - pad >= iw
                                        {
                                            continue;
                                        }
                                        want += w[((mo * c + ci) * k + ky) * k + kx] as f64
                                            * x[(ci * ih + iy - pad) * iw + ix - pad] as f64;
                                    }
                                }
                            }
                            let at = (mo * g.oh + oy) * g.ow + ox;
                            let clamped = want.clamp(-0.25, 0.5);
                            for (got, want) in [(y[at], want), (yc[at], clamped)] {
                                assert!(
                                    (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
                                    "{kernel:?} c{c} m{m} {ih}x{iw} k{k} p{pad} s{st}: y[{mo}][{oy}][{ox}] = {got}, want {want}"
                                );
                            }
                        }
                    }
                }
                assert!(
                    y[m * g.oh * g.ow..].iter().all(|v| v.is_nan()),
                    "wrote past the planes"
                );
                // Rows split between threads give the same sums.
                if kernel == crate::gemm::Kernel::detect() {
                    let mut yp = vec![f32::NAN; m * g.oh * g.ow];
                    d.run_par(&pad_buf, Some(&b), &mut yp, None, 3);
                    assert_eq!(yp, y[..m * g.oh * g.ow], "run_par, c{c} m{m} {ih}x{iw}");
                }
            }
        }
    }
}

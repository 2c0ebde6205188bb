//! 3×3 stride-1 convolution by Winograd's minimal filtering (Lavin & Gray), F(2×2, 3×3) or
//! F(4×4, 3×3) (points 0, ±1, ±2, ∞): a `T×T` output tile costs `(T+2)²` multiplies per channel
//! pair instead of `9·T²` (2.25× or 4× fewer) for the price of two transforms (adds and small
//! constant multiplies). The larger tile does less work per pixel, but small planes have few
//! tiles, and the products' columns are tiles counted in whole GEMM panels: [`Winograd::new`]
//! picks the tile by a cost model of both.
//!
//! - At build the weights go through `U = G·g·Gᵀ` (`(T+2)²` per output/input channel pair), and
//!   each position ξ becomes one packed `M × C` left operand.
//! - At run time the tiles of all images are dealt to the threads in whole GEMM panels (or half
//!   panels, which the half-width micro-kernel takes at half the cost), each thread's range cut
//!   into chunks whose operands stay in L2; a thread takes whole chunks with its own buffers
//!   (no fork per product, no shared workspace). Where there are too few tiles to keep every
//!   thread busy, the threads split the output channels instead.
//! - Within a chunk, tiles go in groups of `L` (one vector of tiles: 16 with AVX-512, 8 with
//!   AVX2, 4 or 8 elsewhere), whatever rows or images they come from. For each group and input
//!   channel, the window values of the `L` tiles are read and transformed (`V = Bᵀ·d·B`)
//!   lane-wise, and each result is one whole-vector store into the GEMM's panel layout (`L`
//!   divides the panel width). On AVX-512 the windows come straight from the input by masked
//!   loads and in-register transposes (`winograd_avx512.rs`); elsewhere from zero-padded
//!   copies of the planes, by AVX2 gathers or scalar loads. Then one product per position
//!   (`M_ξ = U_ξ · V_ξ`), and for each group and output channel the inverse transform
//!   (`Y = Aᵀ·M·A`) from one vector load per position, with bias, residual (and on AVX-512 a
//!   ReLU/Clip clamp) applied as the group's runs of same-row tiles are written out.
//!
//! In f32 the result differs from direct convolution by about 1e-6 of the magnitudes of
//! `Σ |w·x|` (F(4×4)'s transform constants are at most 8 and 1/24; F(2×2)'s only halve).

use super::Window2d;
use crate::disjoint::Disjoint;
use crate::gemm::{pack_a, par_for, sgemm_panels_rows, Kernel, MatRef, PackedA, PanelLayout};

#[cfg(target_arch = "x86_64")]
#[path = "winograd_avx512.rs"]
mod avx512;

/// Most positions of a transformed tile (F(4×4): 6×6).
const MAX_XI: usize = 36;

/// Positions of the transformed tile for output tiles `t × t`.
const fn xi(t: usize) -> usize {
    (t + 2) * (t + 2)
}

/// Cycles, roughly, per transformed element read and transformed (windows by masked loads
/// and transposes) and per product element transformed back and written, against 16
/// multiply-adds per cycle in the GEMM; measured on Zen 4 (`conv_bench`).
const INPUT_CYCLES: f32 = 1.0;
const OUTPUT_CYCLES: f32 = 1.3;
/// Extra cost of a panel the chunk's tiles do not fill (the micro-kernel's edge path).
const PARTIAL_PANEL: f32 = 1.25;

/// Bytes of one chunk's operands (V and M of every position) aimed for: about L2.
const CHUNK_BYTES: usize = 1 << 20;

/// Floats added to the stride between consecutive positions' operands and products: one
/// cache line, so that the `(T+2)²` vectors a tile reads or writes at once (one per position)
/// fall in different L1 sets rather than all in one (the plain strides are multiples of 4 KiB).
const SKEW: usize = 16;

/// Fewest panels per chunk: the products' columns are the chunk's tiles, and a chunk that
/// ends early in a panel wastes the rest of it.
const MIN_PANELS: usize = 2;

/// How a group of tiles reads its input windows: which vector width, and whether through
/// AVX gathers.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// 16 tiles per group, window rows read from the input itself by masked AVX-512 loads and
    /// transposed in registers (`winograd_avx512.rs`; no padded copy, no gathers).
    Avx512,
    /// 8 tiles per group, `vgatherdps` on ymm registers.
    Avx2,
    /// 8 tiles per group, scalar loads.
    Scalar8,
    /// 4 tiles per group, scalar loads (for panel widths that 8 does not divide).
    Scalar4,
}

impl Gather {
    fn lanes(self) -> usize {
        match self {
            Gather::Avx512 => 16,
            Gather::Avx2 | Gather::Scalar8 => 8,
            Gather::Scalar4 => 4,
        }
    }

    /// The widest this CPU runs that divides the panel width `nr`.
    fn detect(nr: usize) -> Gather {
        if !cfg!(target_arch = "x86_64") {
            return Gather::Scalar4;
        }
        let g = match Kernel::detect() {
            Kernel::Avx512 => Gather::Avx512,
            Kernel::Avx2 => Gather::Avx2,
            _ => Gather::Scalar8,
        };
        if nr.is_multiple_of(g.lanes()) {
            g
        } else if nr.is_multiple_of(8) {
            Gather::Scalar8
        } else {
            Gather::Scalar4
        }
    }
}

/// One thread's task: tiles `t0..t1` (numbered image by image, row by row) for output
/// channels `m0..m1`.
#[derive(Debug, Clone, Copy)]
struct Part {
    t0: usize,
    t1: usize,
    m0: usize,
    m1: usize,
}

/// The activation after `conv + bias + res`.
#[derive(Clone, Copy)]
enum Act<F> {
    None,
    Map(F),
    Clamp(f32, f32),
}

/// Where the output transform writes: `y = conv + bias + res`, clamped to `clamp` (the
/// AVX-512 path only; elsewhere an activation pass follows).
#[derive(Clone, Copy)]
struct Sink<'a> {
    out: Disjoint,
    bias: Option<&'a [f32]>,
    res: Option<&'a [f32]>,
    clamp: Option<(f32, f32)>,
}

/// A 3×3, stride-1, dilation-1, ungrouped convolution with its weights transformed.
#[derive(Debug, Clone)]
pub struct Winograd {
    c: usize,
    m: usize,
    geom: Window2d,
    /// Output tile rows and columns (2 or 4).
    t: usize,
    /// Tiles per image: rows and columns of `t × t` output tiles.
    th: usize,
    tw: usize,
    /// Most tiles per chunk (a multiple of the panel width).
    chunk: usize,
    /// `U_ξ`, `M × C`, packed.
    u: Vec<PackedA>,
    gather: Gather,
}

impl Winograd {
    /// Whether the window is one this transform computes (3×3, stride 1, dilation 1).
    pub fn fits(g: &Window2d) -> bool {
        (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1) && g.oh > 0 && g.ow > 0
    }

    /// Transforms `w` (`M × C × 3 × 3`) for batches of about `images` images, with the tile
    /// size the cost model prefers for them. Panics unless [`Winograd::fits`].
    pub fn new(w: &[f32], c: usize, m: usize, geom: Window2d, images: usize) -> Winograd {
        let cost = |t| {
            let (input, gemm, output) = Winograd::layout(c, m, geom, t).costs(images);
            input + gemm + output
        };
        let t = if cost(4) < cost(2) { 4 } else { 2 };
        Winograd::with_tile(w, c, m, geom, t)
    }

    /// [`Winograd::new`] with the output tile forced to `t × t` (2 or 4), for tests and
    /// benchmarks.
    #[doc(hidden)]
    pub fn with_tile(w: &[f32], c: usize, m: usize, geom: Window2d, t: usize) -> Winograd {
        assert!(
            Winograd::fits(&geom) && w.len() >= m * c * 9 && (t == 2 || t == 4),
            "winograd: bad shape"
        );
        let mut wg = Winograd::layout(c, m, geom, t);
        let wn = t + 2;
        let mut u = vec![vec![0.0f32; m * c]; xi(t)];
        for (mc, g) in w.chunks_exact(9).take(m * c).enumerate() {
            // G·g (wn×3), then (G·g)·Gᵀ (wn×wn).
            let mut gg = [[0.0f32; 3]; 6];
            for j in 0..3 {
                let col = g_transform(t, [g[j], g[3 + j], g[6 + j]]);
                for (i, v) in col.into_iter().take(wn).enumerate() {
                    gg[i][j] = v;
                }
            }
            for (i, row) in gg.iter().take(wn).enumerate() {
                for (j, v) in g_transform(t, *row).into_iter().take(wn).enumerate() {
                    u[wn * i + j][mc] = v;
                }
            }
        }
        wg.u = u
            .iter()
            .map(|ui| pack_a(MatRef::row_major(ui, m, c), m, c))
            .collect();
        wg
    }

    /// Everything but the transformed weights.
    fn layout(c: usize, m: usize, geom: Window2d, t: usize) -> Winograd {
        let (th, tw) = (geom.oh.div_ceil(t), geom.ow.div_ceil(t));
        let nr = PanelLayout::new(c, 1).nr();
        let chunk = (CHUNK_BYTES / (xi(t) * (c + m) * 4) / nr).max(MIN_PANELS) * nr;
        Winograd {
            c,
            m,
            geom,
            t,
            th,
            tw,
            chunk,
            u: vec![],
            gather: Gather::detect(nr),
        }
    }

    /// Output tile rows and columns: 2 or 4.
    pub fn tile_size(&self) -> usize {
        self.t
    }

    /// The same convolution reading its windows through `gather` (for tests of every path on
    /// one machine). Panics if this CPU cannot run it or its width does not divide the panels.
    #[doc(hidden)]
    pub fn with_gather(mut self, gather: Gather) -> Winograd {
        let nr = PanelLayout::new(self.c, 1).nr();
        let runs = match gather {
            Gather::Avx512 => Kernel::detect() == Kernel::Avx512,
            Gather::Avx2 => matches!(Kernel::detect(), Kernel::Avx512 | Kernel::Avx2),
            Gather::Scalar8 => cfg!(target_arch = "x86_64"),
            Gather::Scalar4 => true,
        };
        assert!(
            runs && nr.is_multiple_of(gather.lanes()),
            "winograd: {gather:?} cannot run here"
        );
        self.gather = gather;
        self
    }

    /// Floats of one lane's buffers: the right operands in panels, then the products.
    fn lane_len(&self) -> usize {
        xi(self.t) * (PanelLayout::new(self.c, self.chunk).len() + self.m * self.chunk + 2 * SKEW)
    }

    /// Width of a padded plane: the tiles' columns and the halo.
    fn pw(&self) -> usize {
        self.t * self.tw + 2
    }

    /// Floats of one zero-padded input plane: the rows and columns the tiles read.
    fn padded(&self) -> usize {
        (self.t * self.th + 2) * self.pw()
    }

    /// Floats of the zero-padded copies of `images` images' planes: none where the AVX-512
    /// transform reads the input itself.
    fn pads_len(&self, images: usize) -> usize {
        if self.gather == Gather::Avx512 {
            0
        } else {
            images * self.c * self.padded()
        }
    }

    /// Scratch floats for `images` images on up to `threads` threads.
    pub fn scratch_len(&self, images: usize, threads: usize) -> usize {
        let (lanes, parts) = self.split(images, threads);
        // (16 floats of slack to start the lanes' buffers on a 64-byte boundary.)
        self.pads_len(images) + lanes * parts * self.lane_len() + 16
    }

    /// Estimated cycles of `images` images on one thread: (input transform, products, output
    /// transform).
    fn costs(&self, images: usize) -> (f32, f32, f32) {
        let (c, m) = (self.c, self.m);
        let tiles = images.max(1) * self.th * self.tw;
        let layout = PanelLayout::new(c, 1);
        let (nr, step) = (layout.nr(), layout.step());
        let cols: f32 = self
            .chunks(tiles, 1, 0)
            .map(|(t0, t1)| {
                // Full panels, and the last one as wide as the micro-kernel that takes it.
                let (n, rest) = ((t1 - t0) / nr * nr, (t1 - t0) % nr);
                let edge = match rest {
                    0 => 0,
                    r if r <= step => step,
                    _ => nr,
                };
                n as f32 + PARTIAL_PANEL * edge as f32
            })
            .sum();
        let x = xi(self.t) as f32;
        (
            x * tiles as f32 * INPUT_CYCLES * c as f32,
            x * cols * (c * m) as f32 / 16.0,
            x * tiles as f32 * OUTPUT_CYCLES * m as f32,
        )
    }

    /// (tile lanes, channel parts) for `images` images on `threads` threads. Either the tiles
    /// are dealt to the threads (at most one lane per `PanelLayout::step` columns of tiles),
    /// or, where few tiles would leave a thread idle or unevenly loaded, the output channels
    /// are: each part then transforms the whole input (the cheap side) and does its share of
    /// the products and the output transform. The one whose busiest thread costs less.
    fn split(&self, images: usize, threads: usize) -> (usize, usize) {
        let tiles = images * self.th * self.tw;
        let steps = tiles.div_ceil(PanelLayout::new(self.c, 1).step()).max(1);
        let lanes = threads.clamp(1, steps);
        let mr = self.u.first().map_or(1, |u| u.mr());
        let strips = self.m.div_ceil(mr);
        let parts = threads.clamp(1, strips);
        if parts == 1 {
            return (lanes, 1);
        }
        let (input, gemm, output) = self.costs(images);
        let by_tiles = steps.div_ceil(lanes) as f32 / steps as f32 * (input + gemm + output);
        let by_channels = input + strips.div_ceil(parts) as f32 / strips as f32 * (gemm + output);
        if by_channels < by_tiles {
            (1, parts)
        } else {
            (lanes, 1)
        }
    }

    /// Output channels of part `part` of `parts`: whole packed strips of the weights.
    fn channels(&self, parts: usize, part: usize) -> (usize, usize) {
        let mr = self.u.first().map_or(1, |u| u.mr());
        let per = self.m.div_ceil(mr).div_ceil(parts) * mr;
        ((part * per).min(self.m), ((part + 1) * per).min(self.m))
    }

    /// The chunks of lane `lane` of `lanes` over `tiles` tiles, as tile ranges. The tiles are
    /// dealt to the lanes in whole steps (panels, or half panels where the GEMM runs those at
    /// half the cost, `PanelLayout::step`), as evenly as steps allow, one contiguous range
    /// per lane (so each thread writes one range of images, the range the next layer's thread
    /// reads back); a lane's range is cut into as few chunks of at most `self.chunk` tiles as
    /// hold it, of equal steps.
    fn chunks(
        &self,
        tiles: usize,
        lanes: usize,
        lane: usize,
    ) -> impl Iterator<Item = (usize, usize)> {
        let step = PanelLayout::new(self.c, 1).step();
        let steps = tiles.div_ceil(step);
        let (lo, hi) = (lane * steps / lanes, (lane + 1) * steps / lanes);
        let (a, b) = ((lo * step).min(tiles), (hi * step).min(tiles));
        let n = (hi - lo).div_ceil(self.chunk / step).max(1);
        let per = ((hi - lo).div_ceil(n) * step).max(step);
        (a..b).step_by(per).map(move |t0| (t0, (t0 + per).min(b)))
    }

    /// `y = act(conv(x) + bias + res)` for `images` NCHW images (`act` the identity when
    /// `None`). `scratch` holds [`Winograd::scratch_len`] floats for the same `images` and
    /// `threads`. The tiles write `conv + bias + res`; the activation is one vectorised pass
    /// over the output at the end (so the tile code is compiled once per ISA and tile, not
    /// once per activation too).
    #[allow(clippy::too_many_arguments)]
    pub fn run<F: Fn(f32) -> f32 + Sync + Copy>(
        &self,
        images: usize,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        act: Option<F>,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let act = act.map_or(Act::None, Act::Map);
        self.run_act(images, x, bias, res, act, y, scratch, threads);
    }

    /// [`Winograd::run`] with the activation as an [`Act`].
    #[allow(clippy::too_many_arguments)]
    fn run_act<F: Fn(f32) -> f32 + Sync + Copy>(
        &self,
        images: usize,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        act: Act<F>,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let g = &self.geom;
        let (isz, osz) = (g.ih * g.iw, g.oh * g.ow);
        assert!(x.len() >= images * self.c * isz && y.len() >= images * self.m * osz);
        assert!(res.is_none_or(|r| r.len() >= images * self.m * osz));
        assert!(bias.is_none_or(|b| b.len() >= self.m));
        let (tile_lanes, parts) = self.split(images, threads);
        let lanes = tile_lanes * parts;
        let per = self.lane_len();
        let planes = images * self.c;
        let psz = self.padded();
        let pads = self.pads_len(images);
        assert!(
            scratch.len() >= pads + lanes * per + 16,
            "winograd: scratch"
        );
        assert!(pads <= i32::MAX as usize, "winograd: input too large");
        let (padded, bufs) = scratch.split_at_mut(pads);
        // The panels and products are read and written as whole vectors: aligned, none
        // straddles two cache lines.
        let aligned = bufs.as_ptr().align_offset(64).min(16);
        let bufs = &mut bufs[aligned..];
        // The AVX-512 transform reads the windows from `x` itself by masked loads; the others
        // read zero-padded copies of every input plane, a run of planes per thread.
        let padded = if self.gather == Gather::Avx512 {
            &x[..images * self.c * isz]
        } else {
            let step = planes.div_ceil(lanes);
            let pads = Disjoint::new(padded);
            par_for(lanes, &|lane| {
                for p in (lane * step..planes).take(step) {
                    // SAFETY: plane p is written by lane p / step only.
                    let dst = unsafe { pads.part(p * psz, psz) };
                    pad_plane(g, self.pw(), &x[p * isz..][..isz], dst);
                }
            });
            &*padded
        };
        let tiles = images * self.th * self.tw;
        // The AVX-512 output transform clamps as it stores; other activations, and the other
        // paths, take a pass over the output at the end.
        let (clamp, act) = match act {
            Act::Clamp(lo, hi) if self.gather == Gather::Avx512 => (Some((lo, hi)), None),
            Act::None => (None, None),
            act => (None, Some(act)),
        };
        let sink = Sink {
            out: Disjoint::new(y),
            bias,
            res,
            clamp,
        };
        let bufs = Disjoint::new(bufs);
        par_for(lanes, &|lane| {
            // SAFETY: lane `lane` owns scratch floats [lane·per, (lane+1)·per).
            let buf = unsafe { bufs.part(lane * per, per) };
            let (m0, m1) = self.channels(parts, lane % parts);
            for (t0, t1) in self.chunks(tiles, tile_lanes, lane / parts) {
                let part = Part { t0, t1, m0, m1 };
                // SAFETY: the parts of distinct chunks or channels write disjoint output
                // pixels.
                unsafe { self.chunk_widest(padded, sink, buf, part) };
            }
        });
        if let Some(act) = act {
            let n = images * self.m * osz;
            let part = n.div_ceil(lanes).next_multiple_of(16);
            let parts = Disjoint::new(&mut y[..n]);
            par_for(n.div_ceil(part), &|t| {
                // SAFETY: part t is [t·part, (t+1)·part) ∩ [0, n), one per task.
                let yp = unsafe { parts.part(t * part, part.min(n - t * part)) };
                match act {
                    Act::Map(f) => crate::vmath::map_inplace(yp, f),
                    Act::Clamp(lo, hi) => crate::vmath::map_inplace(yp, |v| v.max(lo).min(hi)),
                    Act::None => {}
                }
            });
        }
    }

    /// [`Winograd::run`] with the activation a clamp to `lo..=hi` (ReLU, Clip; `max` then
    /// `min`, so NaN gives `lo`), which the AVX-512 path applies as it stores rather than in
    /// a pass of its own.
    #[allow(clippy::too_many_arguments)]
    pub fn run_clamped(
        &self,
        images: usize,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        (lo, hi): (f32, f32),
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let act = Act::<fn(f32) -> f32>::Clamp(lo, hi);
        self.run_act(images, x, bias, res, act, y, scratch, threads);
    }

    /// [`Winograd::chunk_run`] for this convolution's gather, compiled for the ISA it needs.
    ///
    /// # Safety
    /// As [`Winograd::chunk_run`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn chunk_widest(&self, p: &[f32], sink: Sink, buf: &mut [f32], part: Part) {
        #[cfg(target_arch = "x86_64")]
        {
            /// `chunk_run::<_, $l, $g, T>` compiled with the target features `$features`.
            macro_rules! compiled_for {
                ($name:ident, $features:literal, $l:literal, $g:expr) => {
                    #[target_feature(enable = $features)]
                    #[allow(clippy::too_many_arguments)]
                    unsafe fn $name<const T: usize>(
                        w: &Winograd,
                        p: &[f32],
                        sink: Sink,
                        buf: &mut [f32],
                        part: Part,
                    ) {
                        // SAFETY: passed on from the caller.
                        unsafe { w.chunk_run::<$l, { $g }, T>(p, sink, buf, part) }
                    }
                };
            }
            compiled_for!(avx512, "avx512f,avx2,fma", 16, GATHER_AVX512);
            compiled_for!(avx2, "avx2,fma", 8, GATHER_AVX2);
            compiled_for!(avx2_scalar8, "avx2,fma", 8, GATHER_SCALAR);
            compiled_for!(avx2_scalar4, "avx2,fma", 4, GATHER_SCALAR);
            let wide = matches!(Kernel::detect(), Kernel::Avx512 | Kernel::Avx2);
            /// The wrapper `$f` for this convolution's tile size.
            macro_rules! tiled {
                ($f:ident) => {
                    if self.t == 4 {
                        $f::<4>(self, p, sink, buf, part)
                    } else {
                        $f::<2>(self, p, sink, buf, part)
                    }
                };
            }
            // SAFETY (each arm): `with_gather` and `Gather::detect` only choose a gather this
            // CPU runs, and `wide` says it has AVX2; the rest is the caller's contract.
            match self.gather {
                Gather::Avx512 => return unsafe { tiled!(avx512) },
                Gather::Avx2 => return unsafe { tiled!(avx2) },
                Gather::Scalar8 if wide => return unsafe { tiled!(avx2_scalar8) },
                Gather::Scalar4 if wide => return unsafe { tiled!(avx2_scalar4) },
                _ => {}
            }
        }
        /// `chunk_run` with `L` lanes of scalar gathers, for this convolution's tile size.
        macro_rules! scalar {
            ($l:literal) => {
                if self.t == 4 {
                    self.chunk_run::<$l, GATHER_SCALAR, 4>(p, sink, buf, part)
                } else {
                    self.chunk_run::<$l, GATHER_SCALAR, 2>(p, sink, buf, part)
                }
            };
        }
        // SAFETY: the caller's contract; the scalar gathers need no CPU feature.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            match self.gather {
                Gather::Scalar4 => scalar!(4),
                _ => scalar!(8),
            }
            // Elsewhere only groups of 4 are compiled (`Gather::detect` picks no other there),
            // which keeps the device binary small.
            #[cfg(not(target_arch = "x86_64"))]
            scalar!(4)
        }
    }

    /// The part's tiles from the padded input `p` to its output channels, `L` tiles at a time, reading windows by gather `G` (a `GATHER_*`); the output
    /// tiles are `T × T` (`T` = `self.t`).
    ///
    /// # Safety
    /// No other thread writes the output pixels of these tiles; `G` is a gather this CPU runs
    /// with `L` its width, and `L` divides the panel width.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn chunk_run<const L: usize, const G: u8, const T: usize>(
        &self,
        p: &[f32],
        sink: Sink,
        buf: &mut [f32],
        part: Part,
    ) {
        let Part { t0, t1, m0, m1 } = part;
        let (c, m, n) = (self.c, self.m, t1 - t0);
        let layout = PanelLayout::new(c, n);
        let vlen = PanelLayout::new(c, self.chunk).len() + SKEW;
        let (v, prod) = buf.split_at_mut(xi(T) * vlen);
        // Product rows are `ldc` apart so that every group's `L` columns are inside the row;
        // one position's product is `plen` floats.
        let ldc = n.next_multiple_of(L);
        let plen = m * ldc + SKEW;
        // SAFETY: passed on from the caller.
        unsafe { self.transform_input::<L, G, T>(p, &layout, vlen, v, t0, t1) };
        for xi in 0..xi(T) {
            let b = &v[xi * vlen..][..layout.len()];
            let c = &mut prod[xi * plen..][..m * ldc];
            sgemm_panels_rows(&self.u[xi], b, &layout, c, ldc, m0..m1);
        }
        // SAFETY: passed on from the caller.
        unsafe { self.transform_output::<L, T>(prod, plen, ldc, sink, part) };
    }

    /// (image, tile row, tile column) of tile `t`.
    #[inline(always)]
    fn tile(&self, t: usize) -> (usize, usize, usize) {
        let per_img = self.th * self.tw;
        (t / per_img, t % per_img / self.tw, t % self.tw)
    }

    /// `V = Bᵀ·d·B` for every tile of `t0..t1` and input channel, into `(T+2)²` panel operands
    /// (`vlen` floats apart), a group of `L` tiles at a time.
    ///
    /// # Safety
    /// As [`Winograd::chunk_run`].
    #[inline(always)]
    unsafe fn transform_input<const L: usize, const G: u8, const T: usize>(
        &self,
        p: &[f32],
        layout: &PanelLayout,
        vlen: usize,
        v: &mut [f32],
        t0: usize,
        t1: usize,
    ) {
        let (psz, pw) = (self.padded(), self.pw());
        let plane_stride = self.c * psz;
        for g0 in (0..t1 - t0).step_by(L) {
            #[cfg(target_arch = "x86_64")]
            if G == GATHER_AVX512 && L == 16 {
                // `p` is the input itself (`run`): each tile's window offset in its image's
                // first plane, and per window row the columns inside the plane (none for rows
                // above or below it).
                let g = &self.geom;
                let isz = g.ih * g.iw;
                let mut off16 = [0isize; 16];
                let mut masks = [[0u16; 16]; 6];
                for i in 0..16 {
                    let t = if t0 + g0 + i < t1 { t0 + g0 + i } else { t0 };
                    let (img, ty, tx) = self.tile(t);
                    let (y0, x0) = (
                        (T * ty) as isize - g.pt as isize,
                        (T * tx) as isize - g.pl as isize,
                    );
                    off16[i] = (img * self.c * isz) as isize + y0 * g.iw as isize + x0;
                    let inside = |v: isize, n: usize| v >= 0 && v < n as isize;
                    let cols = (0..T + 2)
                        .filter(|&b| inside(x0 + b as isize, g.iw))
                        .fold(0u16, |m, b| m | 1 << b);
                    for (a, ma) in masks.iter_mut().enumerate().take(T + 2) {
                        ma[i] = if inside(y0 + a as isize, g.ih) {
                            cols
                        } else {
                            0
                        };
                    }
                }
                assert!(p.len() >= (self.tile(t1 - 1).0 + 1) * self.c * isz);
                for ch in 0..self.c {
                    let at = layout.at(ch, g0);
                    assert!(at + 16 <= layout.len() && layout.len() <= vlen);
                    assert!(v.len() >= (xi(T) - 1) * vlen + layout.len());
                    // SAFETY: AVX-512F (the caller's contract); the masks admit only window
                    // elements inside their plane of channel ch of their image, inside `p`
                    // (checked above); position ξ's 16 floats at ξ·vlen + at are inside `v`
                    // (checked above).
                    unsafe {
                        avx512::input16::<T>(
                            p.as_ptr().add(ch * isz),
                            &off16,
                            &masks,
                            g.iw,
                            v.as_mut_ptr().add(at),
                            vlen,
                        )
                    };
                }
                continue;
            }
            // Offset of each tile's window in its image's first padded plane; lanes past the
            // chunk read tile t0's window (their columns are never used).
            let mut off = [0i32; L];
            for (i, o) in off.iter_mut().enumerate() {
                let t = if t0 + g0 + i < t1 { t0 + g0 + i } else { t0 };
                let (img, ty, tx) = self.tile(t);
                *o = (img * plane_stride + T * (ty * pw + tx)) as i32;
            }
            for ch in 0..self.c {
                // SAFETY: every window lies inside its padded plane, inside `p` (checked
                // against i32 in `run`); `G` runs on this CPU (the caller's contract).
                let d = unsafe { gather::<L, G, T>(p, ch * psz, &off, pw) };
                let vals = input_transform::<L, T>(&d);
                let at = layout.at(ch, g0);
                for (xi, vx) in vals.iter().take(xi(T)).enumerate() {
                    v[xi * vlen + at..][..L].copy_from_slice(vx);
                }
            }
        }
    }

    /// `Y = Aᵀ·M·A` for every tile of `t0..t1` and output channel, from the `(T+2)²` products
    /// (`M` rows `ldc` apart each), then `act(y + bias + res)` into the output, a group of
    /// `L` tiles at a time, written as runs of tiles along one tile row.
    ///
    /// # Safety
    /// No other thread writes the output pixels of these tiles.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn transform_output<const L: usize, const T: usize>(
        &self,
        prod: &[f32],
        plen: usize,
        ldc: usize,
        sink: Sink,
        part: Part,
    ) {
        let Part { t0, t1, m0, m1 } = part;
        let Sink {
            out,
            bias,
            res,
            clamp,
        } = sink;
        // (Only the AVX-512 stores clamp; `run` leaves it `None` elsewhere.)
        #[cfg(not(target_arch = "x86_64"))]
        let _ = clamp;
        let g = &self.geom;
        let osz = g.oh * g.ow;
        let m = self.m;
        let mut rows = [[0.0f32; 64]; 4];
        for g0 in (0..t1 - t0).step_by(L) {
            let nt = L.min(t1 - t0 - g0);
            // Runs of consecutive tiles on one tile row: (first lane, output offset in channel
            // 0 of the image, output rows, output columns).
            let mut runs = [(0usize, 0usize, 0usize, 0usize); L];
            let mut nruns = 0;
            let mut i = 0;
            while i < nt {
                let (img, ty, tx) = self.tile(t0 + g0 + i);
                let len = (nt - i).min(self.tw - tx);
                let base = img * m * osz + T * (ty * g.ow + tx);
                runs[nruns] = (i, base, T.min(g.oh - T * ty), (T * len).min(g.ow - T * tx));
                nruns += 1;
                i += len;
            }
            for ch in m0..m1 {
                let b = bias.map_or(0.0, |b| b[ch]);
                self.output_rows::<L, T>(prod, plen, ch * ldc + g0, b, &mut rows);
                for &(lane, base, nrow, ncol) in &runs[..nruns] {
                    for (r, orow) in rows.iter().enumerate().take(nrow) {
                        let at = base + ch * osz + r * g.ow;
                        let src = &orow[T * lane..][..ncol];
                        // SAFETY: these pixels belong to this group's tiles, which the caller
                        // gives this thread alone.
                        let yr = unsafe { out.part(at, ncol) };
                        #[cfg(target_arch = "x86_64")]
                        if L == 16 {
                            let rr = res.map(|r| &r[at..at + ncol]);
                            // SAFETY: L = 16 is compiled for AVX-512F only (`chunk_widest`).
                            unsafe { avx512::put(yr, src, rr, clamp) };
                            continue;
                        }
                        match res {
                            Some(res) => {
                                let rr = &res[at..at + ncol];
                                for ((y, &v), &q) in yr.iter_mut().zip(src).zip(rr) {
                                    *y = v + q;
                                }
                            }
                            None => crate::movement::copy_short(yr, src),
                        }
                    }
                }
            }
        }
    }

    /// `Aᵀ·M·A + bias` of one output channel for the group of `L` tiles whose products start
    /// at `prod[at]` (position ξ's at `prod[ξ·plen + at]`), into `o`: `T` output rows with
    /// lane i's pixels at `T·i .. T·i + T`.
    #[inline(always)]
    fn output_rows<const L: usize, const T: usize>(
        &self,
        prod: &[f32],
        plen: usize,
        at: usize,
        bias: f32,
        o: &mut [[f32; 64]; 4],
    ) {
        #[cfg(target_arch = "x86_64")]
        if L == 16 {
            assert!((xi(T) - 1) * plen + at + 16 <= prod.len());
            // SAFETY: L = 16 is compiled for AVX-512F only (`chunk_widest`); every position's
            // 16 floats are inside `prod` (checked above).
            return unsafe { avx512::output16::<T>(prod.as_ptr().add(at), plen, bias, o) };
        }
        let row = |k: usize| -> [f32; L] {
            let r = &prod[k * plen + at..][..L];
            r.try_into().expect("L floats")
        };
        // (Built whole when every position is used, so no zeroing pass.)
        let mm: [[f32; L]; MAX_XI] = if xi(T) == MAX_XI {
            std::array::from_fn(row)
        } else {
            let mut mm = [[0.0f32; L]; MAX_XI];
            for (k, r) in mm.iter_mut().take(xi(T)).enumerate() {
                *r = row(k);
            }
            mm
        };
        *o = output_transform::<L, T>(&mm, bias);
    }
}

/// Gathers read by scalar loads.
const GATHER_SCALAR: u8 = 0;
/// Gathers by AVX2 `vgatherdps` (8 lanes).
#[cfg(target_arch = "x86_64")]
const GATHER_AVX2: u8 = 1;
/// AVX-512, 16 lanes: masked loads and in-register transposes (`avx512::input16`), not
/// [`gather`].
#[cfg(target_arch = "x86_64")]
const GATHER_AVX512: u8 = 2;

/// The `(T+2)²` windows of `L` tiles: element (a, b) of lane i is
/// `p[base + off[i] + a·pw + b]`, at `[(T+2)·a + b][i]`.
///
/// # Safety
/// Every element read is inside `p`; with `G` = `GATHER_AVX2` (and `L` = 8) the CPU runs
/// AVX2. (`GATHER_AVX512` never comes here.)
#[inline(always)]
unsafe fn gather<const L: usize, const G: u8, const T: usize>(
    p: &[f32],
    base: usize,
    off: &[i32; L],
    pw: usize,
) -> [[f32; L]; MAX_XI] {
    let wn = T + 2;
    let mut d = [[0.0f32; L]; MAX_XI];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        if G == GATHER_AVX2 && L == 8 {
            // SAFETY: as above, with AVX2.
            unsafe {
                let idx = _mm256_loadu_si256(off.as_ptr().cast());
                for (k, dk) in d.iter_mut().take(xi(T)).enumerate() {
                    let from = p.as_ptr().add(base + (k / wn) * pw + k % wn);
                    _mm256_storeu_ps(dk.as_mut_ptr(), _mm256_i32gather_ps::<4>(from, idx));
                }
            }
            return d;
        }
    }
    for (k, dk) in d.iter_mut().take(xi(T)).enumerate() {
        let row = &p[base + (k / wn) * pw + k % wn..];
        for (x, &o) in dk.iter_mut().zip(off) {
            *x = row[o as usize];
        }
    }
    d
}

/// `G·(g0, g1, g2)` for output tiles `t × t`: one column or row of the weight transform (the
/// first `t + 2` entries).
fn g_transform(t: usize, [g0, g1, g2]: [f32; 3]) -> [f32; 6] {
    if t == 2 {
        [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2, 0.0, 0.0]
    } else {
        // In f64, by the reciprocals, each entry rounded to f32 once (it was seven f32
        // divisions per call, 18 calls per filter: the seed CNN's load 1.84 -> 1.73 ms).
        const SIXTH: f64 = 1.0 / 6.0;
        const TWELFTH: f64 = 1.0 / 12.0;
        const TWENTY_FOURTH: f64 = 1.0 / 24.0;
        let (a, b, c) = (g0 as f64, g1 as f64, g2 as f64);
        [
            g0 * 0.25,
            (-(a + b + c) * SIXTH) as f32,
            (-(a - b + c) * SIXTH) as f32,
            (a * TWENTY_FOURTH + b * TWELFTH + c * SIXTH) as f32,
            (a * TWENTY_FOURTH - b * TWELFTH + c * SIXTH) as f32,
            g2,
        ]
    }
}

/// `Bᵀ·x` lane-wise over the `T + 2` vectors `x[at + k·stride]`, written back in place.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the lane indexes six vectors at once
fn bt<const L: usize, const T: usize>(x: &mut [[f32; L]; MAX_XI], at: usize, stride: usize) {
    for i in 0..L {
        let v = |k: usize| x[at + k * stride][i];
        if T == 2 {
            let (x0, x1, x2, x3) = (v(0), v(1), v(2), v(3));
            let y = [x0 - x2, x1 + x2, x2 - x1, x1 - x3];
            for (k, yk) in y.into_iter().enumerate() {
                x[at + k * stride][i] = yk;
            }
        } else {
            let (x0, x1, x2, x3, x4, x5) = (v(0), v(1), v(2), v(3), v(4), v(5));
            let y = [
                4.0 * x0 - 5.0 * x2 + x4,
                x3 + x4 - 4.0 * (x1 + x2),
                4.0 * (x1 - x2) - x3 + x4,
                2.0 * (x3 - x1) - x2 + x4,
                2.0 * (x1 - x3) - x2 + x4,
                4.0 * x1 - 5.0 * x3 + x5,
            ];
            for (k, yk) in y.into_iter().enumerate() {
                x[at + k * stride][i] = yk;
            }
        }
    }
}

/// `Bᵀ·d·B` lane-wise: the columns, then the rows.
#[inline(always)]
fn input_transform<const L: usize, const T: usize>(d: &[[f32; L]; MAX_XI]) -> [[f32; L]; MAX_XI] {
    let wn = T + 2;
    let mut v = *d;
    for b in 0..wn {
        bt::<L, T>(&mut v, b, wn);
    }
    for a in 0..wn {
        bt::<L, T>(&mut v, wn * a, 1);
    }
    v
}

/// `Aᵀ·(m0 .. m_{T+1})` for one lane (the first `T` entries).
#[inline(always)]
fn at<const T: usize>(m: [f32; 6]) -> [f32; 4] {
    if T == 2 {
        [m[0] + m[1] + m[2], m[1] - m[2] - m[3], 0.0, 0.0]
    } else {
        let [m0, m1, m2, m3, m4, m5] = m;
        let (s12, d12, s34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        [
            m0 + s12 + s34,
            d12 + 2.0 * d34,
            s12 + 4.0 * s34,
            d12 + 8.0 * d34 + m5,
        ]
    }
}

/// `Aᵀ·M·A + bias` lane-wise, as `T` output rows with lane i's pixels at `T·i .. T·i + T`.
#[inline(always)]
fn output_transform<const L: usize, const T: usize>(
    mm: &[[f32; L]; MAX_XI],
    bias: f32,
) -> [[f32; 64]; 4] {
    let wn = T + 2;
    // Aᵀ·M: T rows of T + 2, per lane.
    let mut r = [[[0.0f32; L]; 6]; 4];
    for b in 0..wn {
        for i in 0..L {
            let col = at::<T>(std::array::from_fn(|a| {
                if a < wn {
                    mm[wn * a + b][i]
                } else {
                    0.0
                }
            }));
            for (a, v) in col.into_iter().take(T).enumerate() {
                r[a][b][i] = v;
            }
        }
    }
    let mut o = [[0.0f32; 64]; 4];
    for (a, row) in r.iter().take(T).enumerate() {
        for i in 0..L {
            let px = at::<T>(std::array::from_fn(
                |b| if b < wn { row[b][i] } else { 0.0 },
            ));
            for (k, v) in px.into_iter().take(T).enumerate() {
                o[a][T * i + k] = v + bias;
            }
        }
    }
    o
}

/// Copies plane `src` into `p` (width `pw`) at row `pt`, column `pl`, zeros around.
fn pad_plane(g: &Window2d, pw: usize, src: &[f32], p: &mut [f32]) {
    p.fill(0.0);
    let ph = p.len() / pw;
    for (iy, row) in src.chunks_exact(g.iw).enumerate() {
        let py = iy + g.pt;
        if py >= ph || g.pl >= pw {
            break;
        }
        let n = g.iw.min(pw - g.pl);
        p[py * pw + g.pl..][..n].copy_from_slice(&row[..n]);
    }
}

#[cfg(test)]
#[path = "winograd_tests.rs"]
mod tests;

//! CPU kernel for Conv (1-D and 2-D, grouped), with the fused bias + activation epilogue.
//!
//! Five strategies, chosen at build time:
//! - depthwise (group == C == M): blocks of channels vectorised across channels
//!   ([`DepthwisePlan`]), each thread with its own scratch for the padded input block;
//! - direct ([`DirectConv`]) for first layers with few input taps, on AVX-512;
//! - Winograd F(2×2, 3×3) or F(4×4, 3×3) ([`Winograd`], which picks the tile for the batch)
//!   for 3×3 stride-1 convolutions with constant weights and enough channels, when the output
//!   planes fill the 2×2 tiles well;
//! - pointwise (1×1, stride 1, no padding): GEMM straight on the input planes; over planes too
//!   small to fill the GEMM's panels, `Yᵀ = Xᵀ·Wᵀ` then a transpose (`transposed_pays`);
//! - general: im2col into scratch (split by rows over the threads for one large image), then
//!   GEMM per group and image.
//!
//! Constant weights are packed for the GEMM once, at build. Bias and ReLU/Clip are stored with
//! the products by the GEMM's micro-kernels where there is no residual (`gemm::RowEpi`); other
//! activations and residuals run on each finished block (`gemm::TileFn`). When the output
//! planes are small and the batch is not 1, the images are unfolded side by side and each
//! group runs as one GEMM over all of them (N = batch · plane), then is scattered back to
//! NCHW: a 3×3 output plane alone would leave most of a micro-tile empty.

use edgefuse_kernels::conv::{
    im2col, im2col_images, im2col_rows, DepthwisePlan, DirectConv, Window2d, Winograd,
};
use edgefuse_kernels::gemm::{
    lhs_workspace, pack_a, pack_b, rhs_workspace, sgemm, sgemm_packed, sgemm_packed_b_cols_in,
    sgemm_packed_epi, sgemm_packed_epi_in, Epi, MatRef, PackedA, PackedB, RowEpi, TileFn,
};
use edgefuse_kernels::movement::{copy_short, transpose_f32};
use rayon::prelude::*;

use crate::cpu::ops::elementwise::unary::{with_f32_fn, F32Map};
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Conv, UnaryOp};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

/// Below this many multiply-adds per call, threading costs more than it saves.
pub(crate) const PAR_MIN_WORK: usize = 1 << 16;

/// Most threads one depthwise Conv splits its channel blocks over (each gets its own scratch).
const MAX_LANES: usize = 8;

/// A fused activation, checked when the kernel is built and applied in place after the bias.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue(Option<UnaryOp>);

impl Epilogue {
    /// Accepts every f32 → f32 unary function.
    pub fn new(op: Option<UnaryOp>) -> Result<Epilogue> {
        match op {
            Some(UnaryOp::Not) => unsupported("a fused Not epilogue"),
            _ => Ok(Epilogue(op)),
        }
    }

    /// The activation as bounds a kernel can clamp its stores to (ReLU, Clip), if it is one.
    /// Both clamp as `max` then `min` with a NaN giving the lower bound, as `act::relu` and
    /// the Clip epilogue do.
    pub fn clamp(&self) -> Option<(f32, f32)> {
        match self.0 {
            Some(UnaryOp::Relu) => Some((0.0, f32::INFINITY)),
            Some(UnaryOp::Clip { min, max }) => Some((min, max)),
            _ => None,
        }
    }

    /// `xs[i] = act(xs[i] + bias + res[i])`: [`Epilogue::apply`] after a residual, if any.
    pub fn apply_res(&self, bias: f32, xs: &mut [f32], res: Option<&[f32]>) {
        if let Some(r) = res {
            edgefuse_kernels::vmath::add_inplace(xs, r);
        }
        self.apply(bias, xs);
    }

    /// `xs[i] = act(xs[i] + bias)`.
    pub fn apply(&self, bias: f32, xs: &mut [f32]) {
        struct AddBias<'a> {
            xs: &'a mut [f32],
            bias: f32,
        }
        impl F32Map for AddBias<'_> {
            fn apply<F: Fn(f32) -> f32 + Sync + Copy>(self, f: F) {
                let b = self.bias;
                edgefuse_kernels::vmath::map_inplace(self.xs, move |x| f(x + b));
            }
        }
        match self.0 {
            None if bias == 0.0 => {}
            None => edgefuse_kernels::vmath::map_inplace(xs, move |x| x + bias),
            Some(op) => with_f32_fn(op, AddBias { xs, bias }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Depthwise,
    Direct,
    Winograd,
    Pointwise,
    Im2col,
}

/// Fewest input and output channels for the Winograd strategy: below, the transforms cost
/// more than the products save.
const WINOGRAD_MIN_CHANNELS: usize = 8;

/// Least ratio of direct multiplies (9 per output pixel) to Winograd's (16 per 2×2 tile,
/// counting the tiles that overhang the plane) for the Winograd strategy. The seed CNN's f.6
/// (3×3 outputs, gain 1.27) runs faster by Winograd than by im2col + GEMM: whole model
/// 0.49 → 0.46 ms (best of 2000, 2 threads).
const WINOGRAD_MIN_GAIN: f32 = 1.25;

/// Whether the direct kernel should run this convolution: few input taps (a first layer on a
/// grey or colour image), a window wider than 1×1, whole blocks of output channels, on CPUs
/// with AVX-512, where it was measured (the seed CNN's first layer over 16 images, one thread:
/// 85 µs against 114 µs for im2col + GEMM, without the epilogue).
fn direct_pays(g: &Window2d, c: usize, m: usize, group: usize) -> bool {
    group <= 1
        && g.taps() > 1
        && m >= 8
        && DirectConv::fits(g, c)
        && edgefuse_kernels::gemm::Kernel::detect() == edgefuse_kernels::gemm::Kernel::Avx512
}

/// Whether Winograd should run this convolution (judged with 2×2 tiles: where those pay,
/// the tile [`Winograd::new`] picks pays at least as well).
fn winograd_pays(g: &Window2d, c: usize, m: usize, group: usize) -> bool {
    let tiles = g.oh.div_ceil(2) * g.ow.div_ceil(2);
    let gain = (9 * g.oh * g.ow) as f32 / (16 * tiles).max(1) as f32;
    group <= 1
        && Winograd::fits(g)
        && c.min(m) >= WINOGRAD_MIN_CHANNELS
        && gain >= WINOGRAD_MIN_GAIN
}

struct ConvKernel {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    geom: Window2d,
    strategy: Strategy,
    has_bias: bool,
    /// Input index of the residual added before the activation, if any.
    residual: Option<usize>,
    epilogue: Epilogue,
    /// Each group's weights packed for the GEMM, when the weights are a constant.
    packed: Option<Vec<PackedA>>,
    /// One GEMM per group over the whole batch (see the module doc).
    batched: bool,
    /// The blocked kernel, for the depthwise strategy.
    dw: Option<DepthwisePlan>,
    /// Depthwise scratch slices: one per thread that can help, at most one per channel block.
    dw_slices: usize,
    /// The transformed weights, for the Winograd strategy.
    wino: Option<Winograd>,
    /// The packed weights, for the direct strategy.
    direct: Option<DirectConv>,
    /// Wᵀ packed as a right operand, for pointwise layers over planes too small to fill the
    /// GEMM's panels (see [`transposed_pays`]).
    packed_t: Option<PackedB>,
    /// Threads the scratch is sized for.
    cores: usize,
}

/// Output planes smaller than this are batched into one GEMM when the batch is not 1.
const BATCH_BELOW_PLANE: usize = 512;

pub fn build(op: &Conv, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    if b.inputs.iter().any(|f| f.dtype != DType::F32) {
        return unsupported("Conv on non-f32 tensors");
    }
    let (x, w, y) = (&b.inputs[0], &b.inputs[1], &b.outputs[0]);
    let Some(geom) = Window2d::from_axes(
        &x.shape[2..],
        &op.kernel,
        &op.strides,
        &op.dilations,
        &op.pads,
        &y.shape[2..],
    ) else {
        return unsupported(format!("Conv with {} spatial axes", op.kernel.len()));
    };
    let (c, m) = (x.shape[1], w.shape[0]);
    let wconst = b.consts.get(1).and_then(|c| c.as_ref());
    let strategy = if op.group == c && c == m {
        Strategy::Depthwise
    } else if wconst.is_some() && direct_pays(&geom, c, m, op.group) {
        Strategy::Direct
    } else if wconst.is_some() && winograd_pays(&geom, c, m, op.group) {
        Strategy::Winograd
    } else if geom.taps() == 1 && geom.sh == 1 && geom.sw == 1 && op.pads.iter().all(|&p| p == 0) {
        Strategy::Pointwise
    } else {
        Strategy::Im2col
    };
    let group = op.group.max(1);
    let batched = matches!(strategy, Strategy::Pointwise | Strategy::Im2col)
        && x.shape[0] > 1
        && geom.out_size() < BATCH_BELOW_PLANE;
    // Pointwise over a small plane of one image: Wᵀ packed instead (see `transposed_pays`).
    // Several images are batched instead, their planes side by side filling the panels.
    let transposed = strategy == Strategy::Pointwise
        && wconst.is_some()
        && group == 1
        && !batched
        && transposed_pays(geom.out_size(), m);
    let packed = match (strategy, wconst) {
        _ if transposed => None,
        (Strategy::Depthwise | Strategy::Winograd | Strategy::Direct, _) | (_, None) => None,
        (_, Some(wc)) => {
            let w = wc.typed::<f32>();
            let (mg, k) = (m / group, c / group * geom.taps());
            Some(
                (0..group)
                    .map(|g| pack_a(MatRef::row_major(&w[g * mg * k..][..mg * k], mg, k), mg, k))
                    .collect(),
            )
        }
    };
    let wino = match (strategy, wconst) {
        (Strategy::Winograd, Some(wc)) => {
            Some(Winograd::new(wc.typed::<f32>(), c, m, geom, x.shape[0]))
        }
        _ => None,
    };
    let direct = match (strategy, wconst) {
        (Strategy::Direct, Some(wc)) => Some(DirectConv::new(wc.typed::<f32>(), c, m, geom)),
        _ => None,
    };
    let packed_t = match wconst {
        Some(wc) if transposed => Some(pack_b(MatRef::transposed(wc.typed::<f32>(), c, m), c, m)),
        _ => None,
    };
    if strategy == Strategy::Depthwise && op.residual {
        return unsupported("a depthwise Conv with a residual input");
    }
    let dw = (strategy == Strategy::Depthwise).then(|| DepthwisePlan::new(&geom));
    let cores = crate::cpu::cores();
    let dw_slices = dw.map_or(0, |p| c.div_ceil(p.lanes()).min(MAX_LANES).min(cores));
    Ok(Box::new(ConvKernel {
        packed,
        batched,
        n: x.shape[0],
        c,
        m,
        group: op.group,
        geom,
        strategy,
        has_bias: op.has_bias,
        residual: op.residual_index(),
        epilogue: Epilogue::new(op.act)?,
        dw,
        dw_slices,
        wino,
        direct,
        packed_t,
        cores,
    }))
}

/// Whether a pointwise layer over `osz` pixels with `m` output channels runs as
/// `Yᵀ = Xᵀ·Wᵀ` then a transpose: its columns are then the output channels, which fill the
/// AVX-512 panels (32 wide, edges of up to 16 at half cost, row blocks of 8 or 4), where the
/// pixels of a small plane do not (EfficientNet's 7 × 7 planes: 49 pixels cost 64 columns).
/// Counted in padded micro-tile cells; taken at 15 % fewer, on planes of at most 256 pixels
/// (the transpose is then cheap beside the product).
fn transposed_pays(osz: usize, m: usize) -> bool {
    let cols = |n: usize| 32 * (n / 32) + [0, 16, 32][(n % 32).div_ceil(16)];
    let rows = |n: usize| 8 * (n / 8) + [0, 4, 8][(n % 8).div_ceil(4)];
    let (plain, transposed) = (rows(m) * cols(osz), rows(osz) * cols(m));
    edgefuse_kernels::gemm::Kernel::detect() == edgefuse_kernels::gemm::Kernel::Avx512
        && osz <= 256
        && 100 * transposed <= 85 * plain
}

impl ConvKernel {
    /// Threads for a transposed pointwise layer and each one's packing workspace (f32s, a
    /// multiple of 64 bytes): the output channels are cut in whole panels.
    fn t_split(&self, pb: &PackedB, threads: usize) -> (usize, usize) {
        let osz = self.geom.out_size();
        let panels = self.m.div_ceil(pb.panel_width());
        let work = osz * self.m * self.c;
        let lanes = threads
            .min(self.cores)
            .min(panels)
            .min(work / PAR_MIN_WORK)
            .max(1);
        (lanes, lhs_workspace(osz, self.c).next_multiple_of(16))
    }

    /// A pointwise layer over a small plane as `Yᵀ = Xᵀ·Wᵀ` (pixels × channels, see
    /// [`transposed_pays`]). The output channels are cut between the threads in whole panels;
    /// each thread adds the bias and activation to its columns as the product finishes them,
    /// then transposes them into its channels' planes (with a residual: the transpose, the
    /// residual, then the activation). One fork per image, nothing left to one thread.
    #[allow(clippy::too_many_arguments)]
    fn transposed(
        &self,
        pb: &PackedB,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [u8],
        threads: usize,
    ) {
        let (m, c) = (self.m, self.c);
        let (isz, osz) = (self.geom.in_size(), self.geom.out_size());
        let (lanes, ws_len) = self.t_split(pb, threads);
        let nr = pb.panel_width();
        let per = m.div_ceil(nr).div_ceil(lanes) * nr;
        let scratch: &mut [f32] =
            bytemuck::cast_slice_mut(&mut scratch[..(osz * m + ws_len * lanes) * 4]);
        let (tmp, ws) = scratch.split_at_mut(osz * m);
        let epi = |_: usize, j0: usize, seg: &mut [f32]| {
            if let Some(b) = bias {
                edgefuse_kernels::vmath::add_inplace(seg, &b[j0..j0 + seg.len()]);
            }
            if res.is_none() {
                self.epilogue.apply(0.0, seg);
            }
        };
        let with_epi = bias.is_some() || (res.is_none() && self.epilogue.0.is_some());
        for n in 0..self.n {
            let xt = MatRef::transposed(&x[n * c * isz..][..c * isz], osz, c);
            let yn = &mut y[n * m * osz..][..m * osz];
            let rn = res.map(|r| &r[n * m * osz..][..m * osz]);
            let task = |(t, ((yt, tt), ws)): (usize, TransposedBufs)| {
                let (c0, w) = (t * per, yt.len() / osz);
                let e: Option<TileFn> = if with_epi { Some(&epi) } else { None };
                sgemm_packed_b_cols_in(xt, pb, c0..c0 + w, tt, w, 0.0, 1.0, e, ws);
                transpose_f32(tt, osz, w, yt);
                if let Some(r) = rn {
                    self.epilogue
                        .apply_res(0.0, yt, Some(&r[c0 * osz..][..w * osz]));
                }
            };
            if lanes == 1 {
                task((0, ((yn, &mut tmp[..]), &mut ws[..])));
            } else {
                yn.par_chunks_mut(per * osz)
                    .zip(tmp.par_chunks_mut(per * osz))
                    .zip(ws.par_chunks_mut(ws_len))
                    .enumerate()
                    .for_each(task);
            }
        }
    }

    /// Bias and activation as the GEMM's row epilogue (the micro-kernels add and clamp as
    /// they store), where they fit one: no residual, and no activation or a clamp (ReLU,
    /// Clip). Group `grp`'s output channels are the product's rows.
    fn row_epi<'a>(&self, bias: Option<&'a [f32]>, grp: usize) -> Option<RowEpi<'a>> {
        let clamp = self.epilogue.clamp();
        if self.residual.is_some() || (self.epilogue.0.is_some() && clamp.is_none()) {
            return None;
        }
        let mg = self.m / self.group;
        let bias = bias.map(|b| &b[grp * mg..(grp + 1) * mg]);
        Some(RowEpi { bias, clamp })
    }

    /// The product's epilogue for group `grp`: [`ConvKernel::row_epi`] where it fits, else
    /// `tile` over each finished run.
    fn epi<'a>(&self, bias: Option<&'a [f32]>, grp: usize, tile: TileFn<'a>) -> Epi<'a> {
        self.row_epi(bias, grp).map_or(Epi::Tile(tile), Epi::Rows)
    }

    /// Rows of the unfolded input per group: (C/group)·kh·kw.
    fn col_rows(&self) -> usize {
        self.c / self.group * self.geom.taps()
    }

    /// Threads that take whole images each (the batch is split rather than each image's
    /// product): several images that are not batched into one product, with packed weights.
    fn image_lanes(&self, threads: usize) -> usize {
        let work = self.n * self.m * self.geom.out_size() * self.col_rows();
        if self.n > 1
            && !self.batched
            && self.packed.is_some()
            && matches!(self.strategy, Strategy::Im2col | Strategy::Pointwise)
        {
            threads
                .min(self.cores)
                .min(self.n)
                .min(work / PAR_MIN_WORK)
                .max(1)
        } else {
            1
        }
    }

    /// f32s of packing workspace each thread of a batched product takes (enough for any
    /// run of images), and the most threads: threads multiply their own runs side by side
    /// when the weights are packed.
    fn batch_workspace(&self) -> (usize, usize) {
        match &self.packed {
            Some(p) if self.batched => (
                rhs_workspace(&p[0], self.n * self.geom.out_size()).next_multiple_of(16),
                self.cores.min(self.n),
            ),
            _ => (0, 0),
        }
    }

    /// f32s of one image lane's scratch: its unfolded columns, then its GEMM's packing
    /// workspace (each a multiple of 64 bytes).
    fn lane_scratch(&self) -> (usize, usize) {
        let osz = self.geom.out_size();
        let col = match self.strategy {
            Strategy::Im2col => (self.col_rows() * osz).next_multiple_of(16),
            _ => 0,
        };
        let ws = self
            .packed
            .as_ref()
            .map_or(0, |p| rhs_workspace(&p[0], osz));
        (col, ws.next_multiple_of(16))
    }

    /// Group `grp` of image `n` as a GEMM's right operand: its input planes themselves
    /// (pointwise) or unfolded into `col` (im2col), on up to `threads` threads.
    fn rhs<'a>(
        &self,
        x: &'a [f32],
        n: usize,
        grp: usize,
        col: &'a mut [f32],
        threads: usize,
    ) -> MatRef<'a> {
        let (g, cg) = (&self.geom, self.c / self.group);
        let (isz, osz, rows) = (g.in_size(), g.out_size(), self.col_rows());
        let xg = &x[(n * self.c + grp * cg) * isz..][..cg * isz];
        if self.strategy == Strategy::Pointwise {
            return MatRef::row_major(xg, cg, isz);
        }
        // A large unfold (a stem over a whole photograph: 27 rows of 12,544) is split by rows
        // over the threads, which would otherwise wait for it.
        let lanes = threads.min(rows).min(rows * osz / PAR_MIN_WORK).max(1);
        if lanes > 1 {
            let per = rows.div_ceil(lanes);
            col[..rows * osz]
                .par_chunks_mut(per * osz)
                .enumerate()
                .for_each(|(t, part)| {
                    im2col_rows(g, cg, xg, part, t * per..t * per + part.len() / osz);
                });
        } else {
            im2col(g, cg, xg, col);
        }
        MatRef::row_major(col, rows, osz)
    }

    /// f32s of depthwise scratch per thread (a multiple of 64 bytes), and the most threads.
    fn dw_scratch(&self, plan: &DepthwisePlan) -> (usize, usize) {
        (plan.scratch_len().next_multiple_of(16), self.dw_slices)
    }

    /// Depthwise: each thread takes a run of channel blocks of one image.
    #[allow(clippy::too_many_arguments)]
    fn depthwise(
        &self,
        plan: &DepthwisePlan,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [u8],
        threads: usize,
    ) {
        let g = &self.geom;
        let (isz, osz, taps, l) = (g.in_size(), g.out_size(), g.taps(), plan.lanes());
        let (per, most) = self.dw_scratch(plan);
        let scratch: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..per * most * 4]);
        let blocks = self.c.div_ceil(l);
        let work = self.c * osz * taps;
        let lanes = threads.min(most).min(work / PAR_MIN_WORK).max(1);
        let chunk = blocks.div_ceil(lanes) * l;
        for img in 0..self.n {
            let xi = &x[img * self.c * isz..][..self.c * isz];
            let yi = &mut y[img * self.c * osz..][..self.c * osz];
            let task = |(lane, (yo, sc)): (usize, (&mut [f32], &mut [f32]))| {
                for (b, yb) in yo.chunks_mut(l * osz).enumerate() {
                    let c0 = lane * chunk + b * l;
                    let bias = bias.map(|b| &b[c0..]);
                    let n = yb.len() / osz;
                    let (x, w) = (&xi[c0 * isz..], &w[c0 * taps..]);
                    // ReLU and Clip as the outputs are stored where the plan can; else the
                    // activation over the block's planes at once (the bias is in).
                    let clamp = self.epilogue.clamp();
                    if !plan.run_block_clamped(n, x, w, bias, yb, sc, clamp) {
                        self.epilogue.apply(0.0, yb);
                    }
                }
            };
            if lanes == 1 {
                task((0, (yi, &mut scratch[..per])));
            } else {
                yi.par_chunks_mut(chunk * osz)
                    .zip(scratch.par_chunks_mut(per))
                    .enumerate()
                    .for_each(task);
            }
        }
    }
}

impl CpuKernel for ConvKernel {
    fn scratch_bytes(&self) -> usize {
        if let Some(pb) = &self.packed_t {
            let (_, ws) = self.t_split(pb, self.cores);
            return (self.geom.out_size() * self.m + ws * self.cores) * 4;
        }
        if let Some(wg) = &self.wino {
            return 4 * wg.scratch_len(self.n, self.cores);
        }
        if let Some(d) = &self.direct {
            return 4 * d.scratch_len().next_multiple_of(16) * self.cores.min(self.n).max(1);
        }
        let osz = self.geom.out_size();
        let lanes = self.image_lanes(self.cores);
        if lanes > 1 {
            let (col, ws) = self.lane_scratch();
            return (col + ws) * lanes * 4;
        }
        if self.batched {
            // All images unfolded side by side, then one group's output before the scatter,
            // then a packing workspace per thread.
            let (ws, lanes) = self.batch_workspace();
            return ((self.col_rows() + self.m / self.group) * self.n * osz + ws * lanes) * 4;
        }
        match (self.strategy, &self.dw) {
            (Strategy::Im2col, _) => self.col_rows() * osz * 4,
            (Strategy::Depthwise, Some(plan)) => {
                let (per, most) = self.dw_scratch(plan);
                per * most * 4
            }
            _ => 0,
        }
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let w = inputs[1].typed::<f32>();
        let bias = if self.has_bias {
            Some(inputs[2].typed::<f32>())
        } else {
            None
        };
        let y = outputs[0].typed::<f32>();
        if y.is_empty() {
            return Ok(());
        }
        let g = &self.geom;
        let (isz, osz) = (g.in_size(), g.out_size());
        let bias_of = |ch: usize| bias.map_or(0.0, |b| b[ch]);
        let res = self.residual.map(|i| inputs[i].typed::<f32>());
        let res_of = |n: usize, ch: usize| res.map(|r| &r[(n * self.m + ch) * osz..][..osz]);
        // Bias, residual and activation on each tile of image n, group grp as the GEMM
        // finishes it.
        let tile_epi = |n: usize, grp: usize| {
            move |row: usize, c0: usize, seg: &mut [f32]| {
                let ch = grp * (self.m / self.group) + row;
                let r = res_of(n, ch).map(|r| &r[c0..c0 + seg.len()]);
                self.epilogue.apply_res(bias_of(ch), seg, r);
            }
        };
        if let Some(pb) = &self.packed_t {
            self.transposed(pb, x, bias, res, y, scratch, ctx.threads);
            return Ok(());
        }

        if let Some(plan) = &self.dw {
            let y = &mut y[..self.n * self.m * osz];
            self.depthwise(plan, x, w, bias, y, scratch, ctx.threads);
            return Ok(());
        }
        if let Some(d) = &self.direct {
            // Whole images per thread: each padded into the thread's scratch, convolved, then
            // the residual and activation over its planes at once (the bias is in the sums).
            let per_img = d.scratch_len().next_multiple_of(16);
            let lanes = ctx.threads.min(self.cores).min(self.n).max(1);
            let per = self.n.div_ceil(lanes);
            let scratch: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..4 * per_img * lanes]);
            let y = &mut y[..self.n * self.m * osz];
            let threads = ctx.threads.min(self.cores);
            if self.n < threads {
                // Fewer images than threads: each image's rows split between the threads.
                for (n, yi) in y.chunks_exact_mut(self.m * osz).enumerate() {
                    let pad = &mut scratch[..d.scratch_len()];
                    d.pad_par(&x[n * self.c * isz..][..self.c * isz], pad, threads);
                    let r = res.map(|r| &r[n * self.m * osz..][..self.m * osz]);
                    let clamp = self.epilogue.clamp().filter(|_| r.is_none());
                    d.run_par(pad, bias, yi, clamp, threads);
                    if clamp.is_none() {
                        self.epilogue.apply_res(0.0, yi, r);
                    }
                }
                return Ok(());
            }
            let task = |(lane, (yl, pad)): (usize, (&mut [f32], &mut [f32]))| {
                for (i, yi) in yl.chunks_exact_mut(self.m * osz).enumerate() {
                    let n = lane * per + i;
                    d.pad(&x[n * self.c * isz..][..self.c * isz], pad);
                    let r = res.map(|r| &r[n * self.m * osz..][..self.m * osz]);
                    // ReLU and Clip are clamped as the sums are stored, unless a residual
                    // comes first.
                    let clamp = self.epilogue.clamp().filter(|_| r.is_none());
                    d.run_rows(pad, bias, yi, 0..g.oh, clamp);
                    if clamp.is_none() {
                        self.epilogue.apply_res(0.0, yi, r);
                    }
                }
            };
            if lanes == 1 {
                task((0, (y, scratch)));
            } else {
                y.par_chunks_mut(per * self.m * osz)
                    .zip(scratch.par_chunks_mut(per_img))
                    .enumerate()
                    .for_each(task);
            }
            return Ok(());
        }
        if let Some(wg) = &self.wino {
            let threads = ctx.threads.min(self.cores);
            let scratch = &mut scratch[..4 * wg.scratch_len(self.n, threads)];
            let run = WinogradRun {
                wg,
                n: self.n,
                x,
                bias,
                res: self.residual.map(|i| inputs[i].typed::<f32>()),
                y,
                scratch: bytemuck::cast_slice_mut(scratch),
                threads,
            };
            match (self.epilogue.clamp(), self.epilogue.0) {
                (Some(clamp), _) => run.clamped(clamp),
                (None, Some(op)) => with_f32_fn(op, run),
                (None, None) => run.go(None::<fn(f32) -> f32>),
            }
            return Ok(());
        }

        let (cg, mg) = (self.c / self.group, self.m / self.group);
        let k = self.col_rows();
        let col: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..self.scratch_bytes()]);
        let gemm =
            |grp: usize, rhs: MatRef, out: &mut [f32], ldc: usize, threads: usize| match &self
                .packed
            {
                Some(p) => sgemm_packed(&p[grp], rhs, out, ldc, 0.0, 1.0, threads),
                None => {
                    let wg = MatRef::row_major(&w[grp * mg * k..][..mg * k], mg, k);
                    let n = rhs.cols;
                    sgemm(mg, n, k, wg, rhs, out, ldc, 0.0, 1.0, threads)
                }
            };
        if self.batched {
            // The images split into one run per thread; each run is unfolded and written back
            // by its own thread, and multiplied by one GEMM call that splits over the threads
            // itself (concurrent GEMM calls would each draw a packing buffer from the pool,
            // which could then allocate mid-stream).
            let work = self.n * mg * osz * k * self.group;
            let lanes = ctx.threads.min(self.n).min(work / PAR_MIN_WORK).max(1);
            let per = self.n.div_ceil(lanes);
            let lanes = self.n.div_ceil(per);
            let (cols_all, tmp_all) = col.split_at_mut(k * self.n * osz);
            let (tmp_all, ws_all) = tmp_all.split_at_mut(mg * self.n * osz);
            let y = &mut y[..self.n * self.m * osz];
            let (ws_len, _) = self.batch_workspace();
            for grp in 0..self.group {
                let unfold = |(lane, cols): (usize, &mut [f32])| {
                    let n0 = lane * per;
                    let images = cols.len() / (k * osz);
                    let wide = images * osz;
                    let x0 = &x[(n0 * self.c + grp * cg) * isz..];
                    if self.strategy != Strategy::Pointwise {
                        // Image i into columns i·osz.. of every row of `cols`.
                        im2col_images(g, cg, x0, self.c * isz, images, cols, wide);
                        return;
                    }
                    for i in 0..images {
                        let xg = &x0[i * self.c * isz..][..cg * isz];
                        let rows = cols.chunks_exact_mut(wide);
                        for (row, plane) in rows.zip(xg.chunks_exact(isz)) {
                            copy_short(&mut row[i * osz..(i + 1) * osz], plane);
                        }
                    }
                };
                let fits = ws_len > 0 && lanes <= ws_all.len() / ws_len.max(1);
                let lane_path = self.packed.is_some() && lanes > 1 && fits;
                // On the lanes' path bias and activation are stored with the products.
                let rows = self.row_epi(bias, grp).filter(|_| lane_path);
                let write = |(lane, (tmp, yl)): (usize, (&mut [f32], &mut [f32]))| {
                    let n0 = lane * per;
                    let images = yl.len() / (self.m * osz);
                    let wide = images * osz;
                    for (j, row) in tmp.chunks_exact_mut(wide).enumerate() {
                        let ch = grp * mg + j;
                        // Without a residual, bias and activation go over the channel's whole
                        // row (every image) in one call: per image they were one call per few
                        // pixels (Silero's planes are 1–5 wide).
                        if res.is_none() && rows.is_none() {
                            self.epilogue.apply(bias_of(ch), row);
                        }
                        for i in 0..images {
                            let yp = &mut yl[(i * self.m + ch) * osz..][..osz];
                            copy_short(yp, &row[i * osz..(i + 1) * osz]);
                            if res.is_some() {
                                self.epilogue.apply_res(bias_of(ch), yp, res_of(n0 + i, ch));
                            }
                        }
                    }
                };
                if let (Some(p), true) = (&self.packed, lane_path) {
                    // Each thread unfolds, multiplies (on its own workspace) and writes back
                    // its own run of images: one fork, no thread idle while another packs.
                    let run = |(lane, (((cols, tmp), yl), ws)): (usize, LaneBufs)| {
                        unfold((lane, &mut *cols));
                        let wide = cols.len() / k;
                        let rhs = MatRef::row_major(cols, k, wide);
                        let epi = rows.map(Epi::Rows);
                        sgemm_packed_epi_in(&p[grp], rhs, tmp, wide, 0.0, 1.0, epi, ws);
                        write((lane, (tmp, yl)));
                    };
                    cols_all
                        .par_chunks_mut(k * per * osz)
                        .zip(tmp_all.par_chunks_mut(mg * per * osz))
                        .zip(y.par_chunks_mut(per * self.m * osz))
                        .zip(ws_all.par_chunks_mut(ws_len))
                        .enumerate()
                        .for_each(run);
                    continue;
                }
                if lanes == 1 {
                    unfold((0, &mut *cols_all));
                } else {
                    cols_all
                        .par_chunks_mut(k * per * osz)
                        .enumerate()
                        .for_each(unfold);
                }
                let lane_tmp = tmp_all.chunks_mut(mg * per * osz);
                for (cols, tmp) in cols_all.chunks_mut(k * per * osz).zip(lane_tmp) {
                    let wide = cols.len() / k;
                    gemm(
                        grp,
                        MatRef::row_major(cols, k, wide),
                        tmp,
                        wide,
                        ctx.threads,
                    );
                }
                if lanes == 1 {
                    write((0, (&mut *tmp_all, &mut *y)));
                } else {
                    tmp_all
                        .par_chunks_mut(mg * per * osz)
                        .zip(y.par_chunks_mut(per * self.m * osz))
                        .enumerate()
                        .for_each(write);
                }
            }
            return Ok(());
        }
        let lanes = self.image_lanes(ctx.threads);
        if lanes > 1 {
            // Whole images per thread, each unfolded into the thread's own columns and
            // multiplied on that thread: one fork for the batch instead of one per image.
            let packed = self
                .packed
                .as_ref()
                .expect("image lanes have packed weights");
            let (col_len, ws_len) = self.lane_scratch();
            let per = self.n.div_ceil(lanes);
            let y = &mut y[..self.n * self.m * osz];
            let task = |(lane, (yl, sc)): (usize, (&mut [f32], &mut [f32]))| {
                let (col, ws) = sc.split_at_mut(col_len);
                for (i, yi) in yl.chunks_exact_mut(self.m * osz).enumerate() {
                    let n = lane * per + i;
                    for grp in 0..self.group {
                        let rhs = self.rhs(x, n, grp, col, 1);
                        let yg = &mut yi[grp * mg * osz..][..mg * osz];
                        let tile = tile_epi(n, grp);
                        let epi = self.epi(bias, grp, &tile);
                        sgemm_packed_epi_in(&packed[grp], rhs, yg, osz, 0.0, 1.0, Some(epi), ws);
                    }
                }
            };
            y.par_chunks_mut(per * self.m * osz)
                .zip(col.par_chunks_mut(col_len + ws_len))
                .enumerate()
                .for_each(task);
            return Ok(());
        }
        for n in 0..self.n {
            for grp in 0..self.group {
                let rhs = self.rhs(x, n, grp, col, ctx.threads);
                let yg = &mut y[(n * self.m + grp * mg) * osz..][..mg * osz];
                if let Some(p) = &self.packed {
                    let tile = tile_epi(n, grp);
                    let epi = self.epi(bias, grp, &tile);
                    sgemm_packed_epi(&p[grp], rhs, yg, osz, 0.0, 1.0, ctx.threads, Some(epi));
                    continue;
                }
                gemm(grp, rhs, yg, osz, ctx.threads);
                for (j, yp) in yg.chunks_exact_mut(osz).enumerate() {
                    let ch = grp * mg + j;
                    self.epilogue.apply_res(bias_of(ch), yp, res_of(n, ch));
                }
            }
        }
        Ok(())
    }
}

/// One thread's buffers in a transposed pointwise layer: its channels' output planes, its
/// product (pixels × its channels) and its packing workspace.
type TransposedBufs<'a> = ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]);

/// One thread's buffers in a batched product: its unfolded columns, its product, its images'
/// output and its packing workspace.
type LaneBufs<'a> = (
    ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]),
    &'a mut [f32],
);

/// One Winograd convolution, waiting for its activation (see [`F32Map`]).
struct WinogradRun<'a> {
    wg: &'a Winograd,
    n: usize,
    x: &'a [f32],
    bias: Option<&'a [f32]>,
    res: Option<&'a [f32]>,
    y: &'a mut [f32],
    scratch: &'a mut [f32],
    threads: usize,
}

impl WinogradRun<'_> {
    /// Runs the convolution with `act` (none: no activation pass).
    fn go<F: Fn(f32) -> f32 + Sync + Copy>(self, act: Option<F>) {
        let (n, x, bias, res, threads) = (self.n, self.x, self.bias, self.res, self.threads);
        self.wg
            .run(n, x, bias, res, act, self.y, self.scratch, threads);
    }

    /// Runs the convolution with the activation a clamp (ReLU, Clip).
    fn clamped(self, clamp: (f32, f32)) {
        let (n, x, bias, res, threads) = (self.n, self.x, self.bias, self.res, self.threads);
        self.wg
            .run_clamped(n, x, bias, res, clamp, self.y, self.scratch, threads);
    }
}

impl F32Map for WinogradRun<'_> {
    fn apply<F: Fn(f32) -> f32 + Sync + Copy>(self, f: F) {
        self.go(Some(f))
    }
}

#[cfg(test)]
#[path = "conv_tests.rs"]
pub(crate) mod tests;

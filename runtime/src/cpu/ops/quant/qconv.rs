//! CPU kernel for QConv: u8/i8 convolution with i32 accumulation and a requantizing epilogue.
//!
//! Depthwise convolutions (group == C == M) run `qgemm::depthwise::run_block` over blocks of
//! channels (the fp32 blocked kernel on exact integers), threaded over the blocks; everything else
//! runs the integer GEMM per image and group. A 1×1 stride-1 convolution reads its input planes
//! as they are; any other is first unfolded (byte im2col) once per image and group into shared
//! scratch, so the panels every thread packs are contiguous runs. Weights are packed when the
//! kernel is built. DynamicQuantizeConv (`dynamic_conv.rs`) builds the same kernel
//! (`QConvKernel::new`) and hands each run its activations' zero point and scale (`RunX`).

use edgefuse_kernels::conv::{im2col_u8_ld, DepthwisePlan, Window2d};
use edgefuse_kernels::qgemm::depthwise::{self, PlaneOut};
#[cfg(target_arch = "x86_64")]
use edgefuse_kernels::qgemm::dw_vnni::{DwVnni, Filters};
use edgefuse_kernels::qgemm::{
    clamp, Dynamic, Epilogue, Out, OutKind, QKernel, QWeights, SharedBytes, SharedF32, Source, MR,
    NR,
};
use edgefuse_kernels::vmath::map_inplace;
use rayon::prelude::*;

use super::requant::{constant, stage, weights_minus_zp, Domain, Stage};
use crate::cpu::ops::nn::conv::PAR_MIN_WORK;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Conv, QConv, QOut};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

enum Plan {
    /// The blocked plan and the filters `w − zw` as f32; with byte outputs on a CPU with
    /// AVX-512 VNNI/VBMI, the byte kernel too (same results).
    Depthwise {
        plan: DepthwisePlan,
        taps: Vec<f32>,
        vnni: Option<Box<Vnni>>,
    },
    /// Per group: packed weights and that group's rows of the epilogue.
    Gemm {
        groups: Vec<QWeights>,
        epis: Vec<Epilogue>,
    },
}

pub(super) struct QConvKernel {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    geom: Window2d,
    x: Domain,
    plan: Plan,
    stage: Stage,
    out_f32: bool,
    /// GEMM plan over an unfolded input (anything but 1×1, stride 1, unpadded).
    unfold: bool,
    /// GEMM plan with small output planes and a batch: all images side by side in one
    /// product per group (always unfolded), then scattered back to NCHW.
    batched: bool,
    /// GEMM plan for other stride-1 convolutions: the input read in place (`Source::Shifted`).
    shift: Option<Shift>,
}

/// The VNNI byte depthwise kernel, its packed filters and each channel's Σw.
#[cfg(target_arch = "x86_64")]
struct Vnni {
    plan: DwVnni,
    w: Filters,
    sums: Vec<i32>,
}
#[cfg(not(target_arch = "x86_64"))]
enum Vnni {}

impl Vnni {
    fn scratch_bytes(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        return self.plan.scratch_bytes();
        #[cfg(not(target_arch = "x86_64"))]
        match *self {}
    }
}

/// A stride-1 convolution computed on a wide output grid as wide as its (padded) input, so
/// every tap is a contiguous run of the input plane and nothing is unfolded; the extra
/// columns of each output row are dropped when the rows are copied out.
struct Shift {
    /// Offset of each tap in the padded plane.
    taps: Vec<usize>,
    /// Padded plane height and width.
    ph: usize,
    pw: usize,
    /// Whether the input is first copied into a zero-point-padded plane.
    padded: bool,
    /// Columns of the wide product: `(oh − 1)·pw + ow`.
    cols: usize,
}

/// Output planes smaller than this are batched into one product when the batch is not 1.
const BATCH_BELOW_PLANE: usize = 512;

/// Fewest columns of one image's shifted product (`Shift::cols`) that run shifted rather than
/// batched where the batch's small planes could run as one product.
const SHIFT_MIN_COLS: usize = 4 * NR;

pub fn build(op: &QConv, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let spec = Spec {
        conv: &op.conv,
        x: Domain::new(b.inputs[0].dtype, &op.x),
        x_scale: op.x.scale,
        w_scale: &op.w_scale,
        w_zero_point: &op.w_zero_point,
        out: op.out,
    };
    Ok(Box::new(QConvKernel::new(&spec, b)?))
}

/// What a QConv kernel is built from: the convolution, its activations' domain and scale
/// (for activations quantized at run time: domain zero point 0 and scale 1, the run's own
/// given to [`QConvKernel::execute`]), the weights' quantization and the output.
pub(super) struct Spec<'a> {
    pub conv: &'a Conv,
    pub x: Domain,
    pub x_scale: f32,
    pub w_scale: &'a [f32],
    pub w_zero_point: &'a [i32],
    pub out: QOut,
}

/// The activations of one run: their domain and, where they were quantized at run time, their
/// scale (`dynamic`); `mult` is the depthwise plan's per-channel multiplier (the stage's, or
/// `sx·w_scale[m]` for a run-time scale), which it reads as one array.
pub(super) struct RunX<'a> {
    pub dom: Domain,
    pub dynamic: Option<Dynamic>,
    pub mult: &'a [f32],
}

impl QConvKernel {
    pub(super) fn new(spec: &Spec, b: &BuildCtx) -> Result<QConvKernel> {
        let conv = spec.conv;
        let (x, w, y) = (&b.inputs[0], &b.inputs[1], &b.outputs[0]);
        let Some(geom) = Window2d::from_axes(
            &x.shape[2..],
            &conv.kernel,
            &conv.strides,
            &conv.dilations,
            &conv.pads,
            &y.shape[2..],
        ) else {
            return unsupported(format!("QConv with {} spatial axes", conv.kernel.len()));
        };
        let (n, c, m, group) = (x.shape[0], x.shape[1], w.shape[0], conv.group);
        let wv = constant(b.consts, 1, "QConv weights")?;
        let bias = if conv.has_bias {
            constant(b.consts, 2, "a QConv bias")?
                .typed::<f32>()
                .to_vec()
        } else {
            Vec::new()
        };
        let wq = weights_minus_zp(&wv, m, spec.w_zero_point);
        let xd = spec.x;
        let kernel = QKernel::detect();
        let stage = stage(&spec.out, conv.act, spec.x_scale, spec.w_scale, &bias, m)?;
        let plan = if group == c && c == m && geom.taps() <= depthwise::MAX_TAPS {
            Plan::Depthwise {
                plan: DepthwisePlan::new(&geom),
                taps: depthwise::taps_f32(&wq),
                vnni: if y.dtype == DType::F32 {
                    None
                } else {
                    vnni(&geom, &wq, c)
                },
            }
        } else {
            let (mg, k) = (m / group, c / group * geom.taps());
            let groups = (0..group)
                .map(|g| QWeights::new(kernel, &wq[g * mg * k..(g + 1) * mg * k], mg, k, xd.zp))
                .collect();
            let epis = (0..group)
                .map(|g| Epilogue {
                    mult: stage.epi.mult[g * mg..(g + 1) * mg].to_vec(),
                    add: stage.epi.add[g * mg..(g + 1) * mg].to_vec(),
                    kind: stage.epi.kind,
                })
                .collect();
            Plan::Gemm { groups, epis }
        };
        let g = &geom;
        let direct = g.taps() == 1
            && (g.sh, g.sw, g.pt, g.pl) == (1, 1, 0, 0)
            && (g.oh, g.ow) == (g.ih, g.iw);
        let gemm = matches!(plan, Plan::Gemm { .. });
        // Small planes with a batch run as one product over every image's unfolded columns
        // (`batched`), unless each image's shifted product is wide enough to fill panels on its
        // own: the seed CNN's 13 × 13 → 11 × 11 layer (141 columns) runs twice as fast
        // shifted as unfolded, its 5 × 5 → 3 × 3 one (13 columns) faster batched.
        let small = gemm && n > 1 && g.out_size() < BATCH_BELOW_PLANE;
        let shift_cols = (g.oh.max(1) - 1) * (g.iw + g.pl + g.pr) + g.ow;
        let shift =
            (gemm && !direct && (g.sh, g.sw) == (1, 1) && !(small && shift_cols < SHIFT_MIN_COLS))
                .then(|| {
                    let (ph, pw) = (g.ih + g.pt + g.pb, g.iw + g.pl + g.pr);
                    Shift {
                        taps: (0..g.taps())
                            .map(|t| (t / g.kw) * g.dh * pw + (t % g.kw) * g.dw)
                            .collect(),
                        ph,
                        pw,
                        padded: (g.pt, g.pl, g.pb, g.pr) != (0, 0, 0, 0),
                        cols: (g.oh - 1) * pw + g.ow,
                    }
                });
        let batched = small && shift.is_none();
        let unfold = gemm && (!direct || batched) && shift.is_none();
        Ok(QConvKernel {
            unfold,
            batched,
            shift,
            n,
            c,
            m,
            group,
            geom,
            x: xd,
            plan,
            stage,
            out_f32: y.dtype == DType::F32,
        })
    }

    /// Input and output elements (every image).
    pub(super) fn sizes(&self) -> (usize, usize) {
        let g = &self.geom;
        (
            self.n * self.c * g.in_size(),
            self.n * self.m * g.out_size(),
        )
    }

    /// The stage's multipliers per output channel (`x_scale·w_scale[m]`, over the output
    /// scale for byte outputs).
    pub(super) fn mult(&self) -> &[f32] {
        &self.stage.epi.mult
    }
}

#[cfg(target_arch = "x86_64")]
fn vnni(g: &Window2d, wq: &[i32], c: usize) -> Option<Box<Vnni>> {
    let plan = DwVnni::new(g)?;
    Some(Box::new(Vnni {
        w: plan.pack(wq, c)?,
        sums: wq.chunks(g.taps()).map(|t| t.iter().sum()).collect(),
        plan,
    }))
}
#[cfg(not(target_arch = "x86_64"))]
fn vnni(_: &Window2d, _: &[i32], _: usize) -> Option<Box<Vnni>> {
    None
}

/// Products with at most this many rows per group split their columns over threads rather
/// than their rows: with few rows, every thread would otherwise pack every activation panel.
const SPLIT_COLS_ROWS: usize = 256;

/// Fewest multiply-adds of one image's product that a batch run image by image splits
/// between threads.
const PER_IMAGE_MIN_WORK: usize = 8 * PAR_MIN_WORK;

/// Most threads one QConv splits its work over (each gets its own scratch).
const MAX_LANES: usize = 8;

/// Most scratch one image needs for its images to be split between threads (each thread then
/// holds its own: up to `MAX_LANES` times this). A large stem's unfolded input stays shared.
const IMAGE_SCRATCH_MAX: usize = 1 << 20;

impl QConvKernel {
    /// Bytes of one image-and-group's unfolded (or padded) input (0 when read in place).
    fn unfold_bytes(&self) -> usize {
        let images = if self.batched { self.n } else { 1 };
        let k = self.c / self.group * self.geom.taps();
        match &self.shift {
            Some(s) if s.padded => (self.c / self.group * s.ph * s.pw).next_multiple_of(64),
            Some(_) => 0,
            None if self.unfold => (k * images * self.geom.out_size()).next_multiple_of(64),
            None => 0,
        }
    }

    /// Bytes of one group's product before it is scattered (batched) or compacted (shifted).
    fn batch_out_bytes(&self) -> usize {
        let elem = if self.out_f32 { 4 } else { 1 };
        let mg = self.m / self.group;
        match &self.shift {
            Some(s) => (mg * s.cols * elem).next_multiple_of(64),
            None if self.batched => {
                (mg * self.n * self.geom.out_size() * elem).next_multiple_of(64)
            }
            None => 0,
        }
    }

    /// Bytes of the staging buffer a column-split product writes before its rows are copied
    /// out (GEMM plans with at most `SPLIT_COLS_ROWS` rows per group; 0 otherwise).
    fn split_bytes(&self) -> usize {
        let mg = self.m / self.group;
        if !matches!(self.plan, Plan::Gemm { .. }) || mg > SPLIT_COLS_ROWS {
            return 0;
        }
        let elem = if self.out_f32 { 4 } else { 1 };
        let wide = match &self.shift {
            Some(s) => s.cols,
            None if self.batched => self.n * self.geom.out_size(),
            None => self.geom.out_size(),
        };
        (mg * wide * elem).next_multiple_of(64)
    }

    fn lane_scratch(&self) -> usize {
        let b = match &self.plan {
            Plan::Depthwise { plan, vnni, .. } => {
                let v = vnni.as_ref().map_or(0, |v| v.scratch_bytes());
                (plan.scratch_len() * 4).max(v)
            }
            Plan::Gemm { groups, .. } => {
                groups.iter().map(|g| g.scratch_bytes()).max().unwrap_or(0)
            }
        };
        b.next_multiple_of(64)
    }

    /// Whether a batch runs image by image (a depthwise plan, or a GEMM plan not batched) and
    /// each image's scratch is small enough to give every thread its own, so the images can be
    /// split between threads.
    fn splits_images(&self) -> bool {
        self.n > 1 && !self.batched && self.image_scratch() <= IMAGE_SCRATCH_MAX
    }

    /// Scratch of one thread running whole images: its own unfolded input, staging and lane.
    fn image_scratch(&self) -> usize {
        self.unfold_bytes() + self.batch_out_bytes() + self.split_bytes() + self.lane_scratch()
    }

    /// (threads sharing each image's work, threads taking whole images). Threads worth using:
    /// one per `PAR_MIN_WORK` multiply-adds of one image's work, at most the session's. A batch
    /// run image by image gives each thread whole images when it has at least as many images
    /// as threads and they share out evenly enough — no fork per image, no split of an image's
    /// work (with 3 large images on 2 threads, splitting each is 1.5 image-times against 2).
    /// Otherwise each image's
    /// work is split, forking once per image; a GEMM plan only from `PER_IMAGE_MIN_WORK` an
    /// image: below that the forks cost more than they share (the `quantize_dynamic` seed
    /// CNN's first layer, 195 k multiply-adds an image at batch 16 — a batch no session can
    /// cut, X's range being the whole batch's — took 0.30 ms on two threads against 0.16 ms on
    /// one).
    fn lanes(&self, ctx: &Ctx) -> (usize, usize) {
        let work = self.m * self.geom.out_size() * self.geom.taps() * (self.c / self.group);
        let threads = ctx.threads.min(MAX_LANES);
        if self.splits_images() {
            // Whole images where they share out evenly enough: a multiple of the threads, many
            // images each, or images too small to split anyway.
            let even = self.n.is_multiple_of(threads)
                || self.n >= 4 * threads
                || work < PER_IMAGE_MIN_WORK;
            if threads > 1 && self.n >= threads && work * self.n >= 2 * PAR_MIN_WORK && even {
                return (1, threads);
            }
            if work < PER_IMAGE_MIN_WORK && matches!(self.plan, Plan::Gemm { .. }) {
                return (1, 1);
            }
        }
        (threads.min(work / PAR_MIN_WORK).max(1), 1)
    }

    /// Runs `f(x_img, c0, out_block, lane_scratch)` on every block of `block` channels of every
    /// image: each lane taking a run of whole blocks of each image with its own scratch slice,
    /// or, with `image_lanes` > 1, whole images.
    #[allow(clippy::type_complexity)]
    fn channel_blocks<X: Sync, T: Send>(
        &self,
        block: usize,
        x: &[X],
        out: &mut [T],
        scratch: &mut [u8],
        (lanes, image_lanes): (usize, usize),
        f: &(dyn Fn(&[X], usize, &mut [T], &mut [u8]) + Sync),
    ) {
        let (isz, osz) = (self.geom.in_size(), self.geom.out_size());
        let per = self.lane_scratch();
        if image_lanes > 1 {
            let (xi, oi) = (self.c * isz, self.c * osz);
            let images = self.n.div_ceil(image_lanes);
            out[..self.n * oi]
                .par_chunks_mut(images * oi)
                .zip(scratch[..per * image_lanes].par_chunks_mut(per))
                .enumerate()
                .for_each(|(lane, (o, sc))| {
                    for (i, o) in o.chunks_exact_mut(oi).enumerate() {
                        let img = lane * images + i;
                        let x_img = &x[img * xi..(img + 1) * xi];
                        for (b, ob) in o.chunks_mut(block * osz).enumerate() {
                            f(x_img, b * block, ob, &mut *sc);
                        }
                    }
                });
            return;
        }
        let lanes = lanes.min(self.c.div_ceil(block));
        let chunk = self.c.div_ceil(block).div_ceil(lanes) * block;
        for img in 0..self.n {
            let out_img = &mut out[img * self.c * osz..(img + 1) * self.c * osz];
            let x_img = &x[img * self.c * isz..(img + 1) * self.c * isz];
            let work = |(lane, (o, sc)): (usize, (&mut [T], &mut [u8]))| {
                for (b, ob) in o.chunks_mut(block * osz).enumerate() {
                    f(x_img, lane * chunk + b * block, ob, &mut *sc);
                }
            };
            if lanes == 1 {
                work((0, (out_img, &mut scratch[..per])));
            } else {
                out_img
                    .par_chunks_mut(chunk * osz)
                    .zip(scratch[..per * lanes].par_chunks_mut(per))
                    .enumerate()
                    .for_each(work);
            }
        }
    }

    /// Depthwise through the fp32-held plan, a block of the plan's lanes at a time.
    #[allow(clippy::too_many_arguments)]
    fn depthwise<T: Send>(
        &self,
        run: &RunX,
        plan: &DepthwisePlan,
        taps: &[f32],
        x: &[u8],
        out: &mut [T],
        plane: fn(&mut [T]) -> PlaneOut,
        scratch: &mut [u8],
        lanes: (usize, usize),
    ) {
        let (isz, osz, t) = (self.geom.in_size(), self.geom.out_size(), self.geom.taps());
        let e = &self.stage.epi;
        self.channel_blocks(
            plan.lanes(),
            x,
            out,
            scratch,
            lanes,
            &|x_img, c0, ob, sc| {
                depthwise::run_block(
                    plan,
                    ob.len() / osz,
                    &x_img[c0 * isz..],
                    run.dom.xor,
                    run.dom.zp,
                    &taps[c0 * t..],
                    &run.mult[c0..],
                    &e.add[c0..],
                    e.kind,
                    plane(ob),
                    bytemuck::cast_slice_mut(sc),
                );
            },
        );
    }

    /// Whether the plan is depthwise, which [`QConvKernel::depthwise_ints`] runs on f32 planes.
    pub(super) fn is_depthwise(&self) -> bool {
        matches!(self.plan, Plan::Depthwise { .. })
    }

    /// A depthwise plan with f32 outputs over activations given as f32 planes of `x − zx`
    /// (whole numbers): the fp32 plan as the float Conv runs it — its planar kernel on wide
    /// planes, where the byte path's channel-interleaved blocks cost transposes — with no bias,
    /// so each sum is the exact integer (the window stays within `MAX_TAPS`); then each block's
    /// planes through the epilogue `clamp(acc·run.mult[m] + add[m])`, as the byte path does.
    pub(super) fn depthwise_ints(
        &self,
        run: &RunX,
        x: &[f32],
        out: &mut TensorViewMut,
        scratch: &mut [u8],
        ctx: &Ctx,
    ) {
        let Plan::Depthwise { plan, taps, .. } = &self.plan else {
            unreachable!("depthwise_ints on a GEMM plan")
        };
        let OutKind::F32 { lo, hi } = self.stage.epi.kind else {
            unreachable!("depthwise_ints with byte outputs")
        };
        let (isz, osz, t) = (self.geom.in_size(), self.geom.out_size(), self.geom.taps());
        let add = &self.stage.epi.add;
        let lanes = self.lanes(ctx);
        let y = out.typed::<f32>();
        self.channel_blocks(plan.lanes(), x, y, scratch, lanes, &|x_img, c0, ob, sc| {
            let n = ob.len() / osz;
            let sc: &mut [f32] = bytemuck::cast_slice_mut(&mut sc[..plan.scratch_len() * 4]);
            plan.run_block_clamped(n, &x_img[c0 * isz..], &taps[c0 * t..], None, ob, sc, None);
            for (c, plane) in ob.chunks_exact_mut(osz).enumerate() {
                let (m, a) = (run.mult[c0 + c], add[c0 + c]);
                map_inplace(plane, move |v| clamp(v * m + a, lo, hi));
            }
        });
        if let Some(post) = &self.stage.post {
            post.apply(0.0, y);
        }
    }

    /// Depthwise through the VNNI byte kernel, 16 channels at a time.
    #[cfg(target_arch = "x86_64")]
    fn depthwise_vnni(
        &self,
        v: &Vnni,
        x: &[u8],
        out: &mut [u8],
        scratch: &mut [u8],
        lanes: (usize, usize),
    ) {
        use edgefuse_kernels::qgemm::dw_vnni::LANES as L;
        let (isz, osz) = (self.geom.in_size(), self.geom.out_size());
        let e = &self.stage.epi;
        self.channel_blocks(L, x, out, scratch, lanes, &|x_img, c0, ob, sc| {
            v.plan.run_block(
                ob.len() / osz,
                &x_img[c0 * isz..],
                self.x.xor,
                self.x.zp,
                v.w.block(c0 / L),
                v.w.split(),
                &v.sums[c0..],
                &e.mult[c0..],
                &e.add[c0..],
                e.kind,
                ob,
                sc,
            );
        });
    }

    /// GEMM: per image (or, batched, all images at once) and group, each lane takes a run of
    /// output channels; or, with `image_lanes` > 1, the images split between threads, each
    /// running whole images on its own scratch ([`QConvKernel::image_scratch`]).
    #[allow(clippy::too_many_arguments)]
    fn gemm<T: Send + Sync + bytemuck::Pod>(
        &self,
        run: &RunX,
        groups: &[QWeights],
        epis: &[Epilogue],
        x: &[u8],
        out: &mut [T],
        wrap: fn(&mut [T]) -> Out,
        scratch: &mut [u8],
        (lanes, image_lanes): (usize, usize),
    ) {
        let image = self.m * self.geom.out_size();
        if image_lanes > 1 {
            let per = self.image_scratch();
            let images = self.n.div_ceil(image_lanes);
            out[..self.n * image]
                .par_chunks_mut(images * image)
                .zip(scratch[..per * image_lanes].par_chunks_mut(per))
                .enumerate()
                .for_each(|(lane, (o, sc))| {
                    for (i, o) in o.chunks_exact_mut(image).enumerate() {
                        let r = lane * images + i;
                        self.gemm_run(run, groups, epis, x, r, o, wrap, sc, 1);
                    }
                });
            return;
        }
        if self.batched {
            self.gemm_run(run, groups, epis, x, 0, out, wrap, scratch, lanes);
        } else {
            for (r, o) in out[..self.n * image].chunks_exact_mut(image).enumerate() {
                self.gemm_run(run, groups, epis, x, r, o, wrap, scratch, lanes);
            }
        }
    }

    /// One product per group: image `r`'s into `out` (its own output), or, batched, every
    /// image's (`r` 0, `out` the whole output).
    #[allow(clippy::too_many_arguments)]
    fn gemm_run<T: Send + Sync + bytemuck::Pod>(
        &self,
        run: &RunX,
        groups: &[QWeights],
        epis: &[Epilogue],
        x: &[u8],
        r: usize,
        out: &mut [T],
        wrap: fn(&mut [T]) -> Out,
        scratch: &mut [u8],
        lanes: usize,
    ) {
        let (isz, osz) = (self.geom.in_size(), self.geom.out_size());
        let (cg, mg) = (self.c / self.group, self.m / self.group);
        let per = self.lane_scratch();
        let chunk = mg.div_ceil(lanes).next_multiple_of(MR);
        let (col, scratch) = scratch.split_at_mut(self.unfold_bytes());
        let (staged, scratch) = scratch.split_at_mut(self.batch_out_bytes());
        let (colsplit, scratch) = scratch.split_at_mut(self.split_bytes());
        let k = cg * self.geom.taps();
        // Images per product.
        let per_run = if self.batched { self.n } else { 1 };
        let wide = match &self.shift {
            Some(s) => s.cols,
            None => per_run * osz,
        };
        // The unfolded input read as a 1×1 convolution over k planes of `wide` pixels.
        let flat = Window2d {
            ih: 1,
            iw: wide,
            kh: 1,
            kw: 1,
            sh: 1,
            sw: 1,
            dh: 1,
            dw: 1,
            pt: 0,
            pl: 0,
            pb: 0,
            pr: 0,
            oh: 1,
            ow: wide,
        };
        // Padding reads the zero point, as its raw byte.
        let pad = (run.dom.zp as u8) ^ run.dom.xor;
        let xor = run.dom.xor;
        for (g, wts) in groups.iter().enumerate() {
            let src = if let Some(s) = &self.shift {
                let x0 = (r * self.c + g * cg) * isz;
                let xg = &x[x0..x0 + cg * isz];
                let xs: &[u8] = if s.padded {
                    let g = &self.geom;
                    let padded = &mut col[..cg * s.ph * s.pw];
                    padded.fill(pad);
                    for (src, dst) in xg
                        .chunks_exact(isz)
                        .zip(padded.chunks_exact_mut(s.ph * s.pw))
                    {
                        for (r, row) in src.chunks_exact(g.iw).enumerate() {
                            let at = (r + g.pt) * s.pw + g.pl;
                            dst[at..at + g.iw].copy_from_slice(row);
                        }
                    }
                    padded
                } else {
                    xg
                };
                Source::Shifted {
                    x: xs,
                    channels: cg,
                    plane: s.ph * s.pw,
                    taps: &s.taps,
                }
            } else if self.unfold {
                for i in 0..per_run {
                    let img = r * per_run + i;
                    let x0 = (img * self.c + g * cg) * isz;
                    let xg = &x[x0..x0 + cg * isz];
                    let taps = self.geom.taps();
                    if lanes > 1 && per_run == 1 && cg > 1 {
                        // One image: its channels' rows of the unfolded matrix are
                        // disjoint runs, unfolded in parallel (the stem's 3 channels).
                        col[..k * wide]
                            .par_chunks_mut(taps * wide)
                            .zip(xg.par_chunks(isz))
                            .for_each(|(rows, plane)| {
                                im2col_u8_ld(&self.geom, 1, plane, rows, wide, 0, pad)
                            });
                    } else {
                        im2col_u8_ld(&self.geom, cg, xg, col, wide, i * osz, pad);
                    }
                }
                Source::Conv {
                    x: &col[..k * wide],
                    g: flat,
                    channels: k,
                }
            } else {
                let x0 = (r * self.c + g * cg) * isz;
                Source::Conv {
                    x: &x[x0..x0 + cg * isz],
                    g: self.geom,
                    channels: cg,
                }
            };
            let mut compute = |out_g: &mut [T]| {
                let cw = wide.div_ceil(lanes.max(1)).next_multiple_of(NR);
                if lanes > 1 && mg <= SPLIT_COLS_ROWS && wide >= lanes * 4 * NR {
                    if !self.out_f32 && wts.writes_shared() {
                        // Each thread writes its run of columns (its own panels) of every
                        // row straight into the output (bytes: T is u8). Runs of whole
                        // cache lines where that leaves no thread idle, so rows whose width
                        // is a multiple of 64 (the large planes; the arena aligns tensors
                        // to 64 bytes) share no line between threads.
                        let cw = match wide.div_ceil(lanes).next_multiple_of(64) {
                            c if wide.div_ceil(c) == lanes => c,
                            // (Rows too short to give every thread whole lines.)
                            _ => cw,
                        };
                        let parts = wide.div_ceil(cw);
                        debug_assert_eq!(std::mem::size_of::<T>(), 1, "byte outputs");
                        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out_g[..mg * wide]);
                        let shared = SharedBytes::new(bytes);
                        let work = |(lane, sc): (usize, &mut [u8])| {
                            let c0 = lane * cw;
                            let c1 = (c0 + cw).min(wide);
                            // SAFETY: each part writes only its own columns c0..c1.
                            unsafe {
                                wts.run_cols_shared(&src, xor, c0..c1, &epis[g], &shared, wide, sc)
                            }
                        };
                        scratch[..per * parts]
                            .par_chunks_mut(per)
                            .enumerate()
                            .for_each(work);
                        return;
                    }
                    if self.out_f32 && wts.writes_shared() {
                        // As above for f32 outputs: each thread's panels are 16 floats,
                        // whole cache lines, so no staging buffer and no copy afterwards.
                        let parts = wide.div_ceil(cw);
                        debug_assert_eq!(std::mem::size_of::<T>(), 4, "f32 outputs");
                        let floats: &mut [f32] = bytemuck::cast_slice_mut(&mut out_g[..mg * wide]);
                        let shared = SharedF32::new(floats);
                        let work = |(lane, sc): (usize, &mut [u8])| {
                            let c0 = lane * cw;
                            let c1 = (c0 + cw).min(wide);
                            // SAFETY: each part writes only its own columns c0..c1.
                            unsafe {
                                wts.run_cols_shared_f32(
                                    &src,
                                    xor,
                                    c0..c1,
                                    run.dynamic,
                                    &epis[g],
                                    &shared,
                                    wide,
                                    sc,
                                )
                            }
                        };
                        scratch[..per * parts]
                            .par_chunks_mut(per)
                            .enumerate()
                            .for_each(work);
                        return;
                    }
                    // Each thread takes a run of columns (its own panels) for every row,
                    // into its block of the staging buffer; then the rows are copied out.
                    let parts = wide.div_ceil(cw);
                    let st: &mut [T] = &mut bytemuck::cast_slice_mut(&mut *colsplit)[..mg * wide];
                    let work = |(lane, (o, sc)): (usize, (&mut [T], &mut [u8]))| {
                        let c0 = lane * cw;
                        let c1 = (c0 + cw).min(wide);
                        wts.run_part(
                            &src,
                            xor,
                            c0..c1,
                            run.dynamic,
                            &epis[g],
                            &mut wrap(o),
                            c1 - c0,
                            1,
                            sc,
                            0..mg,
                        );
                    };
                    st.par_chunks_mut(mg * cw)
                        .zip(scratch[..per * parts].par_chunks_mut(per))
                        .enumerate()
                        .for_each(work);
                    // Rows out in parallel: row r gathers its run from every part.
                    let st = &*st;
                    let row_out = |(r, row): (usize, &mut [T])| {
                        for part in 0..parts {
                            let (c0, c1) = (part * cw, ((part + 1) * cw).min(wide));
                            let w = c1 - c0;
                            row[c0..c1].copy_from_slice(&st[mg * c0 + r * w..][..w]);
                        }
                    };
                    out_g[..mg * wide]
                        .par_chunks_mut(wide)
                        .enumerate()
                        .for_each(row_out);
                    return;
                }
                let work = |(lane, (o, sc)): (usize, (&mut [T], &mut [u8]))| {
                    let first = lane * chunk;
                    let rows = first..(first + chunk).min(mg);
                    wts.run_part(
                        &src,
                        xor,
                        0..wide,
                        run.dynamic,
                        &epis[g],
                        &mut wrap(o),
                        wide,
                        1,
                        sc,
                        rows,
                    );
                };
                if lanes == 1 || chunk >= mg {
                    work((0, (out_g, &mut scratch[..per])));
                } else {
                    out_g
                        .par_chunks_mut(chunk * wide)
                        .zip(scratch[..per * lanes].par_chunks_mut(per))
                        .enumerate()
                        .for_each(work);
                }
            };
            if let Some(s) = &self.shift {
                let st: &mut [T] = &mut bytemuck::cast_slice_mut(staged)[..mg * wide];
                compute(st);
                let (ow, oh) = (self.geom.ow, self.geom.oh);
                let y0 = g * mg * osz;
                for (j, row) in st.chunks_exact(wide).enumerate() {
                    let dst = &mut out[y0 + j * osz..y0 + (j + 1) * osz];
                    for (oy, d) in dst.chunks_exact_mut(ow).enumerate().take(oh) {
                        d.copy_from_slice(&row[oy * s.pw..oy * s.pw + ow]);
                    }
                }
            } else if self.batched {
                let st: &mut [T] = &mut bytemuck::cast_slice_mut(staged)[..mg * wide];
                compute(st);
                for (j, row) in st.chunks_exact(wide).enumerate() {
                    for (img, src) in row.chunks_exact(osz).enumerate() {
                        let y0 = (img * self.m + g * mg + j) * osz;
                        out[y0..y0 + osz].copy_from_slice(src);
                    }
                }
            } else {
                let y0 = g * mg * osz;
                compute(&mut out[y0..y0 + mg * osz]);
            }
        }
    }
}

impl CpuKernel for QConvKernel {
    fn scratch_bytes(&self) -> usize {
        let lanes = self.unfold_bytes()
            + self.batch_out_bytes()
            + self.split_bytes()
            + self.lane_scratch() * MAX_LANES;
        if self.splits_images() {
            lanes.max(self.image_scratch() * MAX_LANES)
        } else {
            lanes
        }
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let run = RunX {
            dom: self.x,
            dynamic: None,
            mult: &self.stage.epi.mult,
        };
        self.execute(&run, inputs[0].data, &mut outputs[0], scratch, ctx);
        Ok(())
    }
}

impl QConvKernel {
    /// The convolution of `x` (bytes, as `run.dom` reads them) into `out`.
    pub(super) fn execute(
        &self,
        run: &RunX,
        x: &[u8],
        out: &mut TensorViewMut,
        scratch: &mut [u8],
        ctx: &Ctx,
    ) {
        let lanes = self.lanes(ctx);
        match (&self.plan, self.out_f32) {
            #[cfg(target_arch = "x86_64")]
            (Plan::Depthwise { vnni: Some(v), .. }, false) => {
                self.depthwise_vnni(v, x, &mut *out.data, scratch, lanes)
            }
            (Plan::Depthwise { plan, taps, .. }, false) => self.depthwise(
                run,
                plan,
                taps,
                x,
                &mut *out.data,
                |o| PlaneOut::Bytes(o),
                scratch,
                lanes,
            ),
            (Plan::Depthwise { plan, taps, .. }, true) => self.depthwise(
                run,
                plan,
                taps,
                x,
                out.typed::<f32>(),
                |o| PlaneOut::F32(o),
                scratch,
                lanes,
            ),
            (Plan::Gemm { groups, epis }, false) => self.gemm(
                run,
                groups,
                epis,
                x,
                &mut *out.data,
                |o| Out::Bytes(o),
                scratch,
                lanes,
            ),
            (Plan::Gemm { groups, epis }, true) => self.gemm(
                run,
                groups,
                epis,
                x,
                out.typed::<f32>(),
                |o| Out::F32(o),
                scratch,
                lanes,
            ),
        }
        if let Some(post) = &self.stage.post {
            post.apply(0.0, out.typed::<f32>());
        }
    }
}

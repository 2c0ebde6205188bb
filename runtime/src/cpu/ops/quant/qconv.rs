//! CPU kernel for QConv: u8/i8 convolution with i32 accumulation and a requantizing epilogue.
//!
//! Depthwise convolutions (group == C == M) run `qgemm::depthwise` per channel; everything else
//! runs the integer GEMM per image and group. A 1×1 stride-1 convolution reads its input planes
//! as they are; any other is first unfolded (byte im2col) once per image and group into shared
//! scratch, so the panels every thread packs are contiguous runs. Weights are packed when the
//! kernel is built.

use edgefuse_kernels::conv::{im2col_u8, Window2d};
use edgefuse_kernels::qgemm::depthwise::{self, PlaneOut};
use edgefuse_kernels::qgemm::{Epilogue, Out, QKernel, QWeights, Source, MR};
use rayon::prelude::*;

use super::requant::{constant, stage, weights_minus_zp, Domain, Stage};
use crate::cpu::ops::nn::conv::PAR_MIN_WORK;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::QConv;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

enum Plan {
    Depthwise {
        kernel: QKernel,
        taps: Vec<i32>,
    },
    /// Per group: packed weights and that group's rows of the epilogue.
    Gemm {
        groups: Vec<QWeights>,
        epis: Vec<Epilogue>,
    },
}

struct QConvKernel {
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
}

pub fn build(op: &QConv, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (x, w, y) = (&b.inputs[0], &b.inputs[1], &b.outputs[0]);
    let Some(geom) = Window2d::from_axes(
        &x.shape[2..],
        &op.conv.kernel,
        &op.conv.strides,
        &op.conv.dilations,
        &op.conv.pads,
        &y.shape[2..],
    ) else {
        return unsupported(format!("QConv with {} spatial axes", op.conv.kernel.len()));
    };
    let (n, c, m, group) = (x.shape[0], x.shape[1], w.shape[0], op.conv.group);
    let wv = constant(b.consts, 1, "QConv weights")?;
    let bias = if op.conv.has_bias {
        constant(b.consts, 2, "a QConv bias")?
            .typed::<f32>()
            .to_vec()
    } else {
        Vec::new()
    };
    let wq = weights_minus_zp(&wv, m, &op.w_zero_point);
    let xd = Domain::new(x.dtype, &op.x);
    let kernel = QKernel::detect();
    let stage = stage(&op.out, op.conv.act, op.x.scale, &op.w_scale, &bias, m)?;
    let plan = if group == c && c == m && geom.taps() <= depthwise::MAX_TAPS {
        Plan::Depthwise { kernel, taps: wq }
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
    let unfold = matches!(plan, Plan::Gemm { .. }) && !direct;
    Ok(Box::new(QConvKernel {
        unfold,
        n,
        c,
        m,
        group,
        geom,
        x: xd,
        plan,
        stage,
        out_f32: y.dtype == DType::F32,
    }))
}

/// Most threads one QConv splits its work over (each gets its own scratch).
const MAX_LANES: usize = 8;

impl QConvKernel {
    /// Bytes of one image-and-group's unfolded input (0 without unfolding).
    fn unfold_bytes(&self) -> usize {
        if self.unfold {
            (self.c / self.group * self.geom.taps() * self.geom.out_size()).next_multiple_of(64)
        } else {
            0
        }
    }

    fn lane_scratch(&self) -> usize {
        let b = match &self.plan {
            Plan::Depthwise { .. } => depthwise::scratch_bytes(&self.geom),
            Plan::Gemm { groups, .. } => {
                groups.iter().map(|g| g.scratch_bytes()).max().unwrap_or(0)
            }
        };
        b.next_multiple_of(64)
    }

    /// Threads worth using: one per `PAR_MIN_WORK` multiply-adds, at most the session's.
    fn lanes(&self, ctx: &Ctx) -> usize {
        let work = self.m * self.geom.out_size() * self.geom.taps() * (self.c / self.group);
        ctx.threads.min(MAX_LANES).min(work / PAR_MIN_WORK).max(1)
    }

    /// Depthwise: each lane takes a run of channels of one image.
    fn depthwise<T: Send>(
        &self,
        taps: &[i32],
        kernel: QKernel,
        x: &[u8],
        out: &mut [T],
        plane: fn(&mut [T]) -> PlaneOut,
        scratch: &mut [u8],
        lanes: usize,
    ) {
        let (isz, osz, t) = (self.geom.in_size(), self.geom.out_size(), self.geom.taps());
        let per = self.lane_scratch();
        let chunk = self.c.div_ceil(lanes);
        for img in 0..self.n {
            let out_img = &mut out[img * self.c * osz..(img + 1) * self.c * osz];
            let work = |(lane, (o, sc)): (usize, (&mut [T], &mut [u8]))| {
                for (j, op) in o.chunks_mut(osz).enumerate() {
                    let ch = lane * chunk + j;
                    let plane_x = &x[(img * self.c + ch) * isz..(img * self.c + ch + 1) * isz];
                    let e = &self.stage.epi;
                    depthwise::run_channel(
                        kernel,
                        &self.geom,
                        plane_x,
                        self.x.xor,
                        self.x.zp,
                        &taps[ch * t..(ch + 1) * t],
                        e.mult[ch],
                        e.add[ch],
                        e.kind,
                        plane(op),
                        sc,
                    );
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

    /// GEMM: per image and group, each lane takes a run of output channels.
    #[allow(clippy::too_many_arguments)]
    fn gemm<T: Send>(
        &self,
        groups: &[QWeights],
        epis: &[Epilogue],
        x: &[u8],
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
        let k = cg * self.geom.taps();
        // The unfolded input read as 1×1 convolution over k planes of the output's size.
        let flat = Window2d {
            ih: self.geom.oh,
            iw: self.geom.ow,
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
            ..self.geom
        };
        for img in 0..self.n {
            for (g, wts) in groups.iter().enumerate() {
                let x0 = (img * self.c + g * cg) * isz;
                let xg = &x[x0..x0 + cg * isz];
                let src = if self.unfold {
                    // Padding reads the zero point, as its raw byte.
                    let pad = (self.x.zp as u8) ^ self.x.xor;
                    im2col_u8(&self.geom, cg, xg, col, pad);
                    Source::Conv {
                        x: &col[..k * osz],
                        g: flat,
                        channels: k,
                    }
                } else {
                    Source::Conv {
                        x: xg,
                        g: self.geom,
                        channels: cg,
                    }
                };
                let y0 = (img * self.m + g * mg) * osz;
                let out_g = &mut out[y0..y0 + mg * osz];
                let work = |(lane, (o, sc)): (usize, (&mut [T], &mut [u8]))| {
                    let first = lane * chunk;
                    let rows = first..(first + chunk).min(mg);
                    wts.run_rows(
                        &src,
                        self.x.xor,
                        osz,
                        &epis[g],
                        &mut wrap(o),
                        osz,
                        1,
                        sc,
                        rows,
                    );
                };
                if lanes == 1 || chunk >= mg {
                    work((0, (out_g, &mut scratch[..per])));
                } else {
                    out_g
                        .par_chunks_mut(chunk * osz)
                        .zip(scratch[..per * lanes].par_chunks_mut(per))
                        .enumerate()
                        .for_each(work);
                }
            }
        }
    }
}

impl CpuKernel for QConvKernel {
    fn scratch_bytes(&self) -> usize {
        self.unfold_bytes() + self.lane_scratch() * MAX_LANES
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].data;
        let lanes = self.lanes(ctx);
        let out = &mut outputs[0];
        match (&self.plan, self.out_f32) {
            (Plan::Depthwise { kernel, taps }, false) => self.depthwise(
                taps,
                *kernel,
                x,
                &mut *out.data,
                |o| PlaneOut::Bytes(o),
                scratch,
                lanes,
            ),
            (Plan::Depthwise { kernel, taps }, true) => self.depthwise(
                taps,
                *kernel,
                x,
                out.typed::<f32>(),
                |o| PlaneOut::F32(o),
                scratch,
                lanes,
            ),
            (Plan::Gemm { groups, epis }, false) => self.gemm(
                groups,
                epis,
                x,
                &mut *out.data,
                |o| Out::Bytes(o),
                scratch,
                lanes,
            ),
            (Plan::Gemm { groups, epis }, true) => self.gemm(
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
        Ok(())
    }
}

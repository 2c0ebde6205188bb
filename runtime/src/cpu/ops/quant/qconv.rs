//! CPU kernel for QConv: u8/i8 convolution with i32 accumulation and a requantizing epilogue.
//!
//! Depthwise convolutions (group == C == M) run `qgemm::depthwise` per channel; everything else
//! runs the integer GEMM per image and group, unfolding the input one panel at a time. Weights
//! are packed when the kernel is built.

use edgefuse_kernels::conv::Window2d;
use edgefuse_kernels::qgemm::depthwise::{self, PlaneOut};
use edgefuse_kernels::qgemm::{Epilogue, Out, QKernel, QWeights, Source};

use super::requant::{constant, stage, weights_minus_zp, Domain, Stage};
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::QConv;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

enum Plan {
    Depthwise { kernel: QKernel, taps: Vec<i32> },
    /// Per group: packed weights and that group's rows of the epilogue.
    Gemm { groups: Vec<QWeights>, epis: Vec<Epilogue> },
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
        constant(b.consts, 2, "a QConv bias")?.typed::<f32>().to_vec()
    } else {
        Vec::new()
    };
    let wq = weights_minus_zp(&wv, m, &op.w_zero_point);
    let xd = Domain::new(x.dtype, &op.x);
    let kernel = QKernel::detect();
    let stage = stage(&op.out, op.conv.act, op.x.scale, &op.w_scale, &bias, m)?;
    let plan = if group == c && c == m {
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
    Ok(Box::new(QConvKernel {
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

impl CpuKernel for QConvKernel {
    fn scratch_bytes(&self) -> usize {
        match &self.plan {
            Plan::Depthwise { .. } => depthwise::scratch_bytes(&self.geom),
            Plan::Gemm { groups, .. } => groups.iter().map(|g| g.scratch_bytes()).max().unwrap_or(0),
        }
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].data;
        let (isz, osz) = (self.geom.in_size(), self.geom.out_size());
        let out = &mut outputs[0];
        let mut out_all = if self.out_f32 {
            Out::F32(out.typed::<f32>())
        } else {
            Out::Bytes(&mut *out.data)
        };
        match &self.plan {
            Plan::Depthwise { kernel, taps } => {
                let t = self.geom.taps();
                for img in 0..self.n {
                    for ch in 0..self.c {
                        let plane = img * self.c + ch;
                        let xs = &x[plane * isz..(plane + 1) * isz];
                        let o = match &mut out_all {
                            Out::F32(f) => PlaneOut::F32(&mut f[plane * osz..(plane + 1) * osz]),
                            Out::Bytes(bb) => PlaneOut::Bytes(&mut bb[plane * osz..(plane + 1) * osz]),
                        };
                        let e = &self.stage.epi;
                        depthwise::run_channel(*kernel, &self.geom, xs, self.x.xor, self.x.zp, &taps[ch * t..(ch + 1) * t], e.mult[ch], e.add[ch], e.kind, o, scratch);
                    }
                }
            }
            Plan::Gemm { groups, epis } => {
                let (cg, mg) = (self.c / self.group, self.m / self.group);
                for img in 0..self.n {
                    for (g, wts) in groups.iter().enumerate() {
                        let x0 = (img * self.c + g * cg) * isz;
                        let src = Source::Conv { x: &x[x0..x0 + cg * isz], g: self.geom, channels: cg };
                        let y0 = (img * self.m + g * mg) * osz;
                        let mut o = match &mut out_all {
                            Out::F32(f) => Out::F32(&mut f[y0..y0 + mg * osz]),
                            Out::Bytes(bb) => Out::Bytes(&mut bb[y0..y0 + mg * osz]),
                        };
                        wts.run(&src, self.x.xor, osz, &epis[g], &mut o, osz, 1, scratch);
                    }
                }
            }
        }
        if let (Some(post), Out::F32(f)) = (&self.stage.post, &mut out_all) {
            post.apply(0.0, f);
        }
        Ok(())
    }
}

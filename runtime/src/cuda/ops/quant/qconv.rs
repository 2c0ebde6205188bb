//! QConv (int8 convolution, 1-D and 2-D, any group): 1×1 layers over a plane as a tiled GEMM
//! (`quant_conv_pw_*`, `pointwise_gemm` with an int32 accumulator); the others
//! `quant_conv_{u8,i8}_{u8,i8,f32}`, one
//! group of threads per output (see `ops::lanes_for`) with an exact int32 accumulator (`quant_conv_dp4a_*`, four channels per
//! dp4a instruction, for symmetric i8 weights and groups of four channels or more), then the requantizing epilogue the CPU
//! kernel applies (`cpu::ops::quant::requant::stage`, mirrored here: `acc·mult[m] + add[m]`, the output's zero
//! point, the clamp a fused ReLU/Clip becomes, rounding half to even). The prepared weights
//! and the per-channel `mult`/`add` are uploaded once, at build, into the kernel's own device
//! buffer. Residual QConvs and float outputs with other activations stay
//! on the CPU.

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::qadd::QAddParams;
use super::{byte_suffix, float_clamp, int_clamp};
use crate::cuda::device::{arg, Device, DeviceBuffer};
use crate::cuda::ops::nn::conv_pointwise::{is_pointwise, Split};
use crate::cuda::ops::{lanes_for, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{QAdd, QConv, QOut};
use crate::ir::{Fact, Op};
use crate::tensor::DType;
use crate::{Error, Result};

/// Mirrors `QConvParams` in `kernels/cuda/quant.cu`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct QConvParams {
    n: i64,
    c: i64,
    h: i64,
    w: i64,
    m: i64,
    oh: i64,
    ow: i64,
    kh: i64,
    kw: i64,
    sh: i64,
    sw: i64,
    dh: i64,
    dw: i64,
    pt: i64,
    pl: i64,
    group: i64,
    zx: i32,
    /// Threads per output (see [`lanes_for`]).
    lanes: i32,
    zp: f32,
    lo: f32,
    hi: f32,
    /// `const DynQ*`: the run's X scale and zero point for DynamicQuantizeConv, 0 for QConv.
    dynq: u64,
    /// `const unsigned char*`: a fused QAdd's other operand, set at launch; 0 without one.
    add_other: u64,
    /// Whether the QConv's output is the fused QAdd's first operand.
    add_conv_is_a: i32,
    /// The fused QAdd's parameters.
    qadd: QAddParams,
}

// SAFETY: plain `repr(C)` numbers and a device address, the layout of the CUDA struct.
unsafe impl DeviceRepr for QConvParams {}

/// The epilogue: per-channel `mult` and `add`, and (zp, lo, hi) of the output.
#[derive(Debug, Clone, PartialEq)]
struct Requant {
    mult: Vec<f32>,
    add: Vec<f32>,
    zp: f32,
    lo: f32,
    hi: f32,
}

/// The CPU's requantizing stage for accumulators in units of `x_scale · w_scale[m]`, computed
/// with the same f32 expressions in the same order, so both backends round alike.
fn requant(op: &QConv, bias: &[f32], m: usize) -> std::result::Result<Requant, String> {
    let ws = |i: usize| op.w_scale[if op.w_scale.len() == 1 { 0 } else { i }];
    let b = |i: usize| bias.get(i).copied().unwrap_or(0.0);
    let x_scale = op.x.scale;
    match (op.out.dtype, op.out.q) {
        (DType::F32, None) => {
            let (lo, hi) = float_clamp(op.conv.act).map_err(|e| format!("QConv with {e}"))?;
            Ok(Requant {
                mult: (0..m).map(|i| x_scale * ws(i)).collect(),
                add: (0..m).map(b).collect(),
                zp: 0.0,
                lo,
                hi,
            })
        }
        (dt, Some(q)) if byte_suffix(dt).is_some() => {
            let (lo, hi) = int_clamp(dt, &q, op.conv.act).map_err(|e| format!("QConv with {e}"))?;
            Ok(Requant {
                mult: (0..m).map(|i| x_scale * ws(i) / q.scale).collect(),
                add: (0..m).map(|i| b(i) / q.scale).collect(),
                zp: q.zero_point as f32,
                lo,
                hi,
            })
        }
        _ => Err(format!("QConv output {:?}", op.out)),
    }
}

fn out_suffix(out: &QOut) -> Option<&'static str> {
    match out.dtype {
        DType::F32 => Some("f32"),
        d => byte_suffix(d),
    }
}

pub fn supports(op: &QConv, inputs: &[Fact], outputs: &[Fact]) -> Support {
    let (x, w) = (&inputs[0], &inputs[1]);
    if byte_suffix(x.dtype).is_none() || byte_suffix(w.dtype).is_none() {
        return Err(format!("QConv of {} by {}", x.dtype, w.dtype));
    }
    if inputs.get(2).is_some_and(|b| b.dtype != DType::F32) {
        return Err("QConv with a bias that is not f32".into());
    }
    if out_suffix(&op.out).is_none() || outputs[0].dtype != op.out.dtype {
        return Err(format!("QConv to {}", outputs[0].dtype));
    }
    if op.conv.residual {
        return Err("QConv with a residual input".into());
    }
    if !(1..=2).contains(&op.conv.kernel.len()) {
        return Err(format!("{}-D QConv", op.conv.kernel.len()));
    }
    // The kernel indexes in 32 bits (outputs times up to 32 lanes, plus one grid-stride step
    // of at most 2^24 threads; one image's input).
    if outputs[0].len() * 32 > i32::MAX as usize - (1 << 24) || x.len() > i32::MAX as usize {
        return Err("QConv too large for 32-bit indexing".into());
    }
    requant(op, &[], w.shape[0]).map(|_| ())
}

/// A QConv prepared for the device; DynamicQuantizeConv and DynamicQuantizeMatMul run it too
/// (`launch_on`, with the run's X scale and zero point in device memory).
pub(super) struct QConvKernel {
    f: CudaFunction,
    /// The kernel's name (its output type last).
    name: String,
    /// Input index of a fused QAdd's other operand (`cuda::fuse`).
    add_from: Option<usize>,
    p: QConvParams,
    /// The prepared weights (i16 weights minus zero points, or dp4a words), then (dp4a) the
    /// row sums, then `mult` and `add` (f32).
    buf: DeviceBuffer,
    /// Offset of the row sums: set for the dp4a kernel.
    sumw_at: Option<u64>,
    mult_at: u64,
    add_at: u64,
    /// Outputs times lanes.
    threads: usize,
    /// The tiled pointwise kernel's split and grid, when it runs that one.
    split: Option<Split>,
}

/// Weights as dp4a words, [M, ceil(cg/4), taps]: channels 4q..4q+3 of one tap in the bytes of
/// word q (channels past `cg` zero), and each row's sum. `wq` is [M, cg, taps], zero point 0,
/// every value in i8 range.
fn pack_dp4a(wq: &[i32], m: usize, cg: usize, taps: usize) -> (Vec<i32>, Vec<i32>) {
    let c4 = cg.div_ceil(4);
    let mut words = vec![0i32; m * c4 * taps];
    for row in 0..m {
        for c in 0..cg {
            for t in 0..taps {
                let v = wq[(row * cg + c) * taps + t] as i8 as u8 as u32;
                words[(row * c4 + c / 4) * taps + t] |= (v << (8 * (c % 4))) as i32;
            }
        }
    }
    let per = cg * taps;
    let sums = (0..m)
        .map(|r| wq[r * per..(r + 1) * per].iter().sum())
        .collect();
    (words, sums)
}

/// Spatial values as (h, w): a 1-D axis becomes (1, len).
fn hw(v: &[usize], one: usize) -> (i64, i64) {
    match v {
        [w] => (one as i64, *w as i64),
        [h, w, ..] => (*h as i64, *w as i64),
        [] => (one as i64, one as i64),
    }
}

/// Whether the kernel can run `add` reading this QConv's output `mid` as its operand `mid_at`
/// (the other operand `other`, the result `y`): elementwise over one shape, the other operand
/// and the output of types the QAdd kernel takes.
pub fn takes_qadd(
    op: &QConv,
    mid: &Fact,
    add: &QAdd,
    mid_at: usize,
    other: &Fact,
    y: &Fact,
) -> bool {
    qadd_params(op, mid, add, mid_at, other, y).is_some()
}

/// The fused QAdd's kernel parameters, when [`takes_qadd`].
fn qadd_params(
    op: &QConv,
    mid: &Fact,
    add: &QAdd,
    mid_at: usize,
    other: &Fact,
    y: &Fact,
) -> Option<QAddParams> {
    let (a, b) = if mid_at == 0 {
        (mid.dtype, other.dtype)
    } else {
        (other.dtype, mid.dtype)
    };
    let fits = byte_suffix(op.out.dtype).is_some()
        && mid.dtype == op.out.dtype
        && other.shape == mid.shape
        && y.shape == mid.shape
        && y.dtype == add.out.dtype
        && out_suffix(&add.out).is_some()
        && byte_suffix(other.dtype).is_some();
    fits.then(|| super::qadd::params(add, a, b).ok()).flatten()
}

pub fn build(op: &QConv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let mut k = build_kernel(op, b)?;
    if let Some(f) = b.fused {
        let Op::QAdd(add) = &f.op else {
            return Err(Error::Unsupported(format!(
                "QConv cannot run a {} in its kernel",
                f.op.name()
            )));
        };
        let other = &b.inputs[b.inputs.len() - 1];
        let Some(q) = qadd_params(op, &f.mid, add, f.at, other, &b.outputs[0]) else {
            return Err(Error::Unsupported("QConv cannot run this QAdd".into()));
        };
        k.p.qadd = q;
        k.p.add_conv_is_a = i32::from(f.at == 0);
        k.add_from = Some(b.inputs.len() - 1);
        // The kernel stores the QAdd's output type.
        let stem = k.name.rsplit_once('_').map_or(&k.name[..], |(s, _)| s);
        let name = format!(
            "{stem}_{}",
            out_suffix(&add.out).expect("checked by takes_qadd")
        );
        k.f = b.dev.function(&name)?;
    }
    Ok(Box::new(k))
}

/// [`build`], unboxed.
pub(super) fn build_kernel(op: &QConv, b: &BuildCtx) -> Result<QConvKernel> {
    let (x, w, y) = (&b.inputs[0], &b.inputs[1], &b.outputs[0]);
    let m = w.shape[0];
    let constant = |i: usize, what: &str| {
        b.consts
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| Error::Unsupported(format!("QConv {what} that is not a constant")))
    };
    let wv = constant(1, "weights")?;
    let bias: Vec<f32> = if op.conv.has_bias {
        constant(2, "bias")?.typed::<f32>().to_vec()
    } else {
        Vec::new()
    };
    let rq = requant(op, &bias, m).map_err(Error::Unsupported)?;
    let per = wv.len() / m.max(1);
    let zw = |row: usize| op.w_zero_point[if op.w_zero_point.len() == 1 { 0 } else { row }];
    let wq: Vec<i32> = (0..wv.len())
        .map(|i| {
            let v = match wv.dtype {
                DType::I8 => wv.data[i] as i8 as i32,
                _ => wv.data[i] as i32,
            };
            v - zw(i / per.max(1))
        })
        .collect();
    // 1×1 layers over a plane take the tiled pointwise kernel (i16 weights); otherwise dp4a
    // takes i8 weights as they are: symmetric (zero point 0), four channels or more.
    let c = &op.conv;
    let pointwise = is_pointwise(&c.kernel, &c.strides, &c.pads, c.group, x, y);
    let cg = w.shape[1];
    let dp4a =
        !pointwise && wv.dtype == DType::I8 && op.w_zero_point.iter().all(|&z| z == 0) && cg >= 4;
    let align = |b: &mut Vec<u8>| b.resize(b.len().div_ceil(256) * 256, 0);
    let mut bytes: Vec<u8>;
    let mut sumw_at = None;
    if dp4a {
        let (words, sums) = pack_dp4a(&wq, m, cg, per / cg.max(1));
        bytes = words.iter().flat_map(|v| v.to_le_bytes()).collect();
        align(&mut bytes);
        sumw_at = Some(bytes.len() as u64);
        bytes.extend(sums.iter().flat_map(|v| v.to_le_bytes()));
    } else {
        bytes = wq.iter().flat_map(|&v| (v as i16).to_le_bytes()).collect();
    }
    align(&mut bytes);
    let mult_at = bytes.len() as u64;
    bytes.extend(rq.mult.iter().flat_map(|v| v.to_le_bytes()));
    let add_at = bytes.len() as u64;
    bytes.extend(rq.add.iter().flat_map(|v| v.to_le_bytes()));
    let (h, wd) = hw(&x.shape[2..], 1);
    let (kh, kw) = hw(&op.conv.kernel, 1);
    let (oh, ow) = hw(&y.shape[2..], 1);
    let (sh, sw) = hw(&op.conv.strides, 1);
    let (dh, dw) = hw(&op.conv.dilations, 1);
    let (pt, pl) = hw(&op.conv.pads[..op.conv.kernel.len()], 0);
    // The reduction's terms: channels (or dp4a words of four) times taps.
    // Lanes per output (`ops::lanes_for`): a 1x1 projection of 960 channels over a 7x7 plane
    // fills the GPU with short loops instead of 7840 threads each walking 960 channels.
    let lanes = lanes_for(
        if dp4a { cg.div_ceil(4) } else { cg } * (kh * kw) as usize,
        32,
    );
    let p = QConvParams {
        n: x.shape[0] as i64,
        c: x.shape[1] as i64,
        h,
        w: wd,
        m: m as i64,
        oh,
        ow,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pt,
        pl,
        group: op.conv.group as i64,
        // Bytes are read in their own type (i8 signed), so the zero point is the file's.
        zx: op.x.zero_point,
        lanes,
        zp: rq.zp,
        lo: rq.lo,
        hi: rq.hi,
        dynq: 0,
        add_other: 0,
        add_conv_is_a: 0,
        qadd: QAddParams::default(),
    };
    let name = format!(
        "quant_conv_{}{}_{}",
        match (pointwise, dp4a) {
            (true, _) => "pw_",
            (false, true) => "dp4a_",
            (false, false) => "",
        },
        byte_suffix(x.dtype).expect("checked by supports"),
        out_suffix(&op.out).expect("checked by supports")
    );
    Ok(QConvKernel {
        f: b.dev.function(&name)?,
        name,
        add_from: None,
        p,
        buf: DeviceBuffer::from_bytes(b.dev, &bytes)?,
        sumw_at,
        mult_at,
        add_at,
        threads: y.len() * lanes as usize,
        split: if pointwise {
            Some(Split::new(b.dev, x, m, 4)?)
        } else {
            None
        },
    })
}

impl QConvKernel {
    /// Enqueues the convolution of the bytes at `x` into `y`, the split's parts (if any) in
    /// `scratch`. `dynq` is 0, or the device address of a `DynQ` (f32 scale, i32 zero point)
    /// the stream writes before this runs: X's zero point and the factor of `mult`.
    pub(super) fn launch_on(
        &self,
        dev: &Device,
        x: u64,
        y: u64,
        scratch: u64,
        dynq: u64,
    ) -> Result<()> {
        self.launch_with(dev, x, y, scratch, QConvParams { dynq, ..self.p })
    }

    /// [`Self::launch_on`] with the parameters given.
    fn launch_with(
        &self,
        dev: &Device,
        x: u64,
        y: u64,
        scratch: u64,
        p: QConvParams,
    ) -> Result<()> {
        let base = self.buf.ptr;
        let (w, mult, add) = (base, base + self.mult_at, base + self.add_at);
        let (x, y) = (&x, &y);
        match self.sumw_at {
            // SAFETY: (const X* x, const int* w4, const int* sumw, const float* mult,
            // const float* add, Y* y, QConvParams p); x and y hold the shapes `p` was built
            // from, `buf` the packed weights, m row sums and m values each of mult and add.
            Some(at) => unsafe {
                let sumw = base + at;
                dev.launch(
                    &self.f,
                    self.threads,
                    &mut [
                        arg(x),
                        arg(&w),
                        arg(&sumw),
                        arg(&mult),
                        arg(&add),
                        arg(y),
                        arg(&p),
                    ],
                )
            },
            // SAFETY: (const X* x, const short* w, const float* mult, const float* add, Y* y,
            // QConvParams p, PwSplit<int> pw); as above, with the i16 weights, the split
            // built from x's shape and m, and its parts in scratch.
            None if self.split.is_some() => unsafe {
                let split = self.split.as_ref().expect("checked");
                let pw = split.args(scratch);
                dev.launch_grid3(
                    &self.f,
                    split.grid,
                    256,
                    &mut [
                        arg(x),
                        arg(&w),
                        arg(&mult),
                        arg(&add),
                        arg(y),
                        arg(&p),
                        arg(&pw),
                    ],
                )
            },
            // SAFETY: as above.
            None => unsafe {
                dev.launch(
                    &self.f,
                    self.threads,
                    &mut [arg(x), arg(&w), arg(&mult), arg(&add), arg(y), arg(&p)],
                )
            },
        }
    }
}

impl CudaKernel for QConvKernel {
    fn scratch_bytes(&self) -> usize {
        self.split.as_ref().map_or(0, |s| s.part_bytes)
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // A fused QAdd's other operand holds y's shape in bytes (`takes_qadd`).
        let add_other = self.add_from.map_or(0, |i| io.inputs[i]);
        let p = QConvParams {
            add_other,
            ..self.p
        };
        self.launch_with(dev, io.inputs[0], io.outputs[0], io.scratch, p)
    }
}

#[cfg(test)]
#[path = "qconv_tests.rs"]
mod tests;

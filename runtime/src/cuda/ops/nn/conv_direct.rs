//! Direct convolution (`nn_conv_direct_*`): depthwise and small convolutions, where
//! cuDNN's per-layer set-up (several ms at load) and its launches (a fp16 NCHW depthwise layer
//! took 52 µs on an H200 against a few for this kernel) cost more than the work. Bias,
//! residual and activation run in the same kernel, and asymmetric padding needs no copy. A
//! max pool reading only the convolution can run inside it too (`takes_pool`, `cuda::fuse`).

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::super::elementwise::unary::epilogue;
use super::conv::hw;
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{float_suffix, lanes_for, BuildCtx, CudaKernel, Io};
use crate::ir::ops::{Conv, Pool, PoolKind, UnaryOp};
use crate::ir::{Fact, Op};
use crate::{Error, Result};

/// Mirrors `DirectParams` in `kernels/cuda/nn.cu`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct DirectParams {
    n: i32,
    c: i32,
    h: i32,
    w: i32,
    m: i32,
    oh: i32,
    ow: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    dh: i32,
    dw: i32,
    pt: i32,
    pl: i32,
    group: i32,
    lanes: i32,
    act: i32,
    p0: f32,
    p1: f32,
    pool_h: i32,
    pool_w: i32,
    out_h: i32,
    out_w: i32,
    in_on: i32,
    in_act: i32,
    in_p0: f32,
    in_p1: f32,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for DirectParams {}

/// Products (output elements × reduction length) up to which any convolution runs direct.
/// (Measured on an H200: thin but large layers — a 3-channel stem, a 16-channel 1×1 over
/// 112×112 — ran 1.3–2.8× slower direct than through cuDNN, so size alone decides.)
const SMALL_MACS: usize = 1 << 22;

/// The reduction length of one output: channels per group × taps.
fn reduction(op: &Conv, x: &Fact) -> usize {
    x.shape[1] / op.group.max(1) * op.kernel.iter().product::<usize>()
}

/// Whether `op` runs direct: depthwise, 1-D (the audio front ends: Silero's 256-tap STFT layer
/// took 31 µs through cuDNN on an H200, plus cuDNN's load), or a small layer — and within
/// 32-bit indexing.
pub fn suits(op: &Conv, x: &Fact, y: &Fact) -> bool {
    let depthwise = x.shape[1] / op.group.max(1) == 1;
    let one_d = op.kernel.len() == 1;
    // 32-bit indices: threads (outputs × up to 32 lanes) plus one grid-stride step (≤ 2^24).
    let fits = y.len() * 32 < i32::MAX as usize - (1 << 24) && x.len() < i32::MAX as usize;
    fits && (depthwise || one_d || y.len() * reduction(op, x) <= SMALL_MACS)
}

/// Whether the direct kernel can take `pool` reading this convolution's output `mid` (giving
/// `y`): the convolution runs direct, has no residual (indexed by its own output), and the
/// pool's windows tile `mid` — a max, window = stride, no padding or dilation, floor rounding,
/// a power of two of 2 to 32 positions (they share one output's lanes, `build`).
pub fn takes_pool(op: &Conv, x: &Fact, mid: &Fact, pool: &Pool, y: &Fact) -> bool {
    let s = op.kernel.len();
    let window: usize = pool.kernel.iter().product();
    // y is [n, m, mid's extents / the window] (after the kernel length is checked).
    let floor = || {
        y.rank() == mid.rank()
            && y.shape[..2] == mid.shape[..2]
            && (2..mid.rank()).all(|d| y.shape[d] == mid.shape[d] / pool.kernel[d - 2])
    };
    pool.kind == PoolKind::Max
        && !op.residual
        && pool.kernel.len() == s
        && pool.strides == pool.kernel
        && pool.pads.iter().all(|&p| p == 0)
        && pool.dilations.iter().all(|&d| d == 1)
        && window.is_power_of_two()
        && (2..=32).contains(&window)
        && mid.rank() == s + 2
        && floor()
        && y.dtype == mid.dtype
        && !super::conv_pointwise::suits(op, x, mid)
        && suits(op, x, mid)
}

/// `in_on` of a moved epilogue with activation `act` (`in_act_apply` in `nn.cu`): 2 for Clip
/// (ReLU6), run as the clamp `act_apply` computes for it; 1 for any other.
pub(super) fn in_mode(act: Option<UnaryOp>) -> i32 {
    match act {
        Some(UnaryOp::Clip { .. }) => 2,
        _ => 1,
    }
}

/// The (activation code, p0, p1) of a moved epilogue (for Clip, p0 and p1 are its bounds).
pub(super) fn in_params(act: Option<UnaryOp>) -> std::result::Result<(i32, f32, f32), String> {
    epilogue(act)
}

/// Whether the direct kernel runs this convolution and can so apply its input's writer's
/// epilogue as it loads (`cuda::fuse::Prologue`).
pub fn takes_prologue(op: &Conv, x: &Fact, y: &Fact) -> bool {
    !super::conv_pointwise::suits(op, x, y) && suits(op, x, y)
}

struct DirectKernel {
    f: CudaFunction,
    p: DirectParams,
    has_bias: bool,
    residual: Option<usize>,
    /// Input index of the writer's bias (`cuda::fuse::Prologue`).
    in_bias: Option<usize>,
    threads: usize,
}

pub fn build(op: &Conv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    // With a pool folded in, `y` is the convolution's own output and `out` the pool's.
    let (x, out) = (&b.inputs[0], &b.outputs[0]);
    let (y, (pool_h, pool_w)) = match b.fused.map(|f| (&f.op, &f.mid)) {
        Some((Op::Pool(p), mid)) if takes_pool(op, x, mid, p, out) => (mid, hw(&p.kernel, 1)),
        Some((r, _)) => {
            return Err(Error::Unsupported(format!(
                "the direct convolution cannot run this {}",
                r.name()
            )))
        }
        None => (out, (1, 1)),
    };
    let (out_h, out_w) = hw(&out.shape[2..], 1);
    let (act, p0, p1) = epilogue(op.act).map_err(Error::Unsupported)?;
    let s = op.kernel.len();
    let (h, w) = hw(&x.shape[2..], 1);
    let (kh, kw) = hw(&op.kernel, 1);
    let (oh, ow) = hw(&y.shape[2..], 1);
    let (sh, sw) = hw(&op.strides, 1);
    let (dh, dw) = hw(&op.dilations, 1);
    let (pt, pl) = hw(&op.pads[..s], 0);
    // A lane takes whole channels: at most as many lanes as channels per group.
    let cg = x.shape[1] / op.group.max(1);
    // The window's positions share a warp: at most 32 lanes in all.
    let window = pool_h * pool_w;
    let lanes = lanes_for(cg * kh * kw, cg).min((32 / window) as i32);
    let (in_on, (in_act, in_p0, in_p1), in_bias) = match b.prologue {
        Some(pro) => (
            in_mode(pro.act),
            in_params(pro.act).map_err(Error::Unsupported)?,
            pro.bias.then(|| b.inputs.len() - 1),
        ),
        None => (0, (0, 0.0, 0.0), None),
    };
    let i = |v: usize| v as i32;
    let p = DirectParams {
        n: i(x.shape[0]),
        c: i(x.shape[1]),
        h: i(h),
        w: i(w),
        m: i(y.shape[1]),
        oh: i(oh),
        ow: i(ow),
        kh: i(kh),
        kw: i(kw),
        sh: i(sh),
        sw: i(sw),
        dh: i(dh),
        dw: i(dw),
        pt: i(pt),
        pl: i(pl),
        group: i(op.group),
        lanes,
        act,
        p0,
        p1,
        pool_h: i(pool_h),
        pool_w: i(pool_w),
        out_h: i(out_h),
        out_w: i(out_w),
        in_on,
        in_act,
        in_p0,
        in_p1,
    };
    let sfx = float_suffix(x.dtype).expect("checked by supports");
    Ok(Box::new(DirectKernel {
        f: b.dev.function(&format!("nn_conv_direct_{sfx}"))?,
        p,
        has_bias: op.has_bias,
        residual: op.residual_index(),
        in_bias,
        threads: out.len() * window * lanes as usize,
    }))
}

impl CudaKernel for DirectKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (x, w, y) = (io.inputs[0], io.inputs[1], io.outputs[0]);
        let bias = if self.has_bias { io.inputs[2] } else { 0 };
        let res = self.residual.map_or(0, |r| io.inputs[r]);
        let in_bias = self.in_bias.map_or(0, |r| io.inputs[r]);
        // SAFETY: (const T* x, const T* w, const T* bias, const T* res, T* y, DirectParams p,
        // const T* in_bias); the buffers hold the shapes `p` was built from; bias (m values),
        // res (y's shape) and in_bias (c values) are null when absent.
        unsafe {
            dev.launch(
                &self.f,
                self.threads,
                &mut [
                    arg(&x),
                    arg(&w),
                    arg(&bias),
                    arg(&res),
                    arg(&y),
                    arg(&self.p),
                    arg(&in_bias),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_convolutions_run_direct() {
        let conv = |group: usize, kernel: Vec<usize>| Conv {
            kernel,
            strides: vec![1, 1],
            pads: vec![0, 0, 0, 0],
            dilations: vec![1, 1],
            group,
            has_bias: true,
            act: None,
            residual: false,
        };
        let f = |s: &[usize]| Fact::new(crate::tensor::DType::F32, s.to_vec());
        // Depthwise at any size.
        assert!(suits(
            &conv(96, vec![3, 3]),
            &f(&[1, 96, 112, 112]),
            &f(&[1, 96, 112, 112])
        ));
        // The seed CNN's 32 → 64 layer: 2.2 M products.
        assert!(suits(
            &conv(1, vec![3, 3]),
            &f(&[1, 32, 13, 13]),
            &f(&[1, 64, 11, 11])
        ));
        // A stem (3 channels × 9 taps over 112×112: 10.8 M products) and a 1×1 projection of
        // 1152 channels over 7×7: cuDNN.
        assert!(!suits(
            &conv(1, vec![3, 3]),
            &f(&[1, 3, 224, 224]),
            &f(&[1, 32, 112, 112])
        ));
        assert!(!suits(
            &conv(1, vec![1, 1]),
            &f(&[1, 1152, 7, 7]),
            &f(&[1, 192, 7, 7])
        ));
        // 1-D at any size (Silero's STFT: 10.6 M products).
        let stft = Conv {
            strides: vec![128],
            pads: vec![0, 0],
            dilations: vec![1],
            ..conv(1, vec![256])
        };
        assert!(suits(&stft, &f(&[32, 1, 832]), &f(&[32, 258, 5])));
        assert_eq!(lanes_for(9, 1), 1);
        assert_eq!(lanes_for(27, 3), 1);
        assert_eq!(lanes_for(288, 32), 16);
        assert_eq!(lanes_for(576, 64), 32);
        assert_eq!(lanes_for(4096, 4096), 32);
        assert_eq!(lanes_for(54, 6), 2);
    }
}

//! Pointwise convolution (`nn_conv_pointwise_*`): 1×1, stride 1, no padding, one group, over a
//! plane of at least [`MIN_PLANE`] positions — the expand and project layers of the mobile
//! CNNs — as a tiled GEMM per image (`pointwise_gemm` in `kernels/cuda/prelude.cuh`), with
//! bias, residual and activation in the same kernel. cuDNN needed a second launch for
//! everything but bias + ReLU, and our per-output kernels read X a plane apart.

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::super::elementwise::unary::epilogue;
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{float_suffix, BuildCtx, CudaKernel, Io};
use crate::ir::ops::Conv;
use crate::ir::Fact;
use crate::{Error, Result};

/// Mirrors `PointwiseParams` in `kernels/cuda/nn.cu`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct PointwiseParams {
    c: i32,
    m: i32,
    plane: i32,
    act: i32,
    p0: f32,
    p1: f32,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for PointwiseParams {}

/// Output tile edge of the kernel (`PW_TILE`).
pub const TILE: usize = 32;
/// Smallest plane the tiled kernel takes: below it most of a tile's columns would idle (a
/// classifier's 1×1 "Logits" conv over one position is a matrix-vector product).
pub const MIN_PLANE: usize = 16;

/// Whether a convolution of `x` is pointwise in the kernel's sense, over a plane of at least
/// [`MIN_PLANE`], within 32-bit indexing and the grid's limits.
pub fn is_pointwise(
    kernel: &[usize],
    strides: &[usize],
    pads: &[usize],
    group: usize,
    x: &Fact,
    y: &Fact,
) -> bool {
    let plane: usize = x.shape[2..].iter().product();
    kernel.iter().all(|&k| k == 1)
        && strides.iter().all(|&s| s == 1)
        && pads.iter().all(|&p| p == 0)
        && group == 1
        && plane >= MIN_PLANE
        && x.shape[0] <= 65_535
        && y.shape[1].div_ceil(TILE) <= 65_535
        && x.len().max(y.len()) < i32::MAX as usize
}

pub fn suits(op: &Conv, x: &Fact, y: &Fact) -> bool {
    is_pointwise(&op.kernel, &op.strides, &op.pads, op.group, x, y)
}

/// The launch grid of a pointwise layer: (plane tiles, channel tiles, images).
pub fn grid(x: &Fact, m: usize) -> (u32, u32, u32) {
    let plane: usize = x.shape[2..].iter().product();
    (
        plane.div_ceil(TILE) as u32,
        m.div_ceil(TILE) as u32,
        x.shape[0] as u32,
    )
}

struct PointwiseKernel {
    f: CudaFunction,
    p: PointwiseParams,
    has_bias: bool,
    residual: Option<usize>,
    grid: (u32, u32, u32),
}

pub fn build(op: &Conv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let (act, p0, p1) = epilogue(op.act).map_err(Error::Unsupported)?;
    let i = |v: usize| v as i32;
    let p = PointwiseParams {
        c: i(x.shape[1]),
        m: i(y.shape[1]),
        plane: i(x.shape[2..].iter().product()),
        act,
        p0,
        p1,
    };
    let sfx = float_suffix(x.dtype).expect("checked by supports");
    Ok(Box::new(PointwiseKernel {
        f: b.dev.function(&format!("nn_conv_pointwise_{sfx}"))?,
        p,
        has_bias: op.has_bias,
        residual: op.residual_index(),
        grid: grid(x, y.shape[1]),
    }))
}

impl CudaKernel for PointwiseKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (x, w, y) = (io.inputs[0], io.inputs[1], io.outputs[0]);
        let bias = if self.has_bias { io.inputs[2] } else { 0 };
        let res = self.residual.map_or(0, |r| io.inputs[r]);
        // SAFETY: (const T* x, const T* w, const T* bias, const T* res, T* y,
        // PointwiseParams p); the buffers hold the shapes `p` and the grid were built from;
        // bias (m values) and res (y's shape) are null when absent.
        unsafe {
            dev.launch_grid3(
                &self.f,
                self.grid,
                256,
                &mut [
                    arg(&x),
                    arg(&w),
                    arg(&bias),
                    arg(&res),
                    arg(&y),
                    arg(&self.p),
                ],
            )
        }
    }
}

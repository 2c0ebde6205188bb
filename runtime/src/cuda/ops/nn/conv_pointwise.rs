//! Pointwise convolution (`nn_conv_pointwise_*`): 1×1, stride 1, no padding, one group, over a
//! plane of at least [`MIN_PLANE`] positions — the expand and project layers of the mobile
//! CNNs — as a tiled GEMM per image (`pointwise_gemm` in `kernels/cuda/prelude.cuh`), with
//! bias, residual and activation in the same kernel. cuDNN needed a second launch for
//! everything but bias + ReLU, and our per-output kernels read X a plane apart. Layers whose
//! output tiles would leave most SMs idle split their reduction ([`Split`]).
//!
//! f32 only: in f16, cuDNN's tensor-core kernels were faster on an H200 for every EfficientNet
//! layer (7–10 µs against 9–16 µs); int8 layers use the same tiling (`cuda::ops::quant::qconv`).

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::super::elementwise::unary::epilogue;
use crate::cuda::device::{arg, Device, DeviceBuffer};
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

/// Whether this f32 convolution takes the tiled kernel.
pub fn suits(op: &Conv, x: &Fact, y: &Fact) -> bool {
    x.dtype == crate::tensor::DType::F32
        && is_pointwise(&op.kernel, &op.strides, &op.pads, op.group, x, y)
}

/// Mirrors `PwSplit<A>` in `kernels/cuda/prelude.cuh`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct PwSplitArgs {
    splits: i32,
    kchunk: i32,
    part: u64,
    counters: u64,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for PwSplitArgs {}

/// How a pointwise layer shares its reduction between blocks: `splits` blocks per output tile,
/// each summing `kchunk` channels (whole k tiles) into scratch; the tile's last block adds the
/// parts (counted in `counters`, zeroed at build and reset by the kernel).
pub struct Split {
    splits: usize,
    kchunk: usize,
    counters: Option<DeviceBuffer>,
    /// The parts' scratch, bytes.
    pub part_bytes: usize,
    /// (plane tiles, channel tiles, images × splits).
    pub grid: (u32, u32, u32),
}

/// Each split sums at least this many k tiles.
const MIN_SPLIT_TILES: usize = 2;

impl Split {
    /// Splits K until the blocks cover the GPU's SMs (or each split holds
    /// [`MIN_SPLIT_TILES`] k tiles). `acc` is the accumulator's size in bytes.
    pub fn new(dev: &Device, x: &Fact, m: usize, acc: usize) -> Result<Split> {
        let (k, plane) = (x.shape[1], x.shape[2..].iter().product::<usize>());
        let tiles = plane.div_ceil(TILE) * m.div_ceil(TILE) * x.shape[0];
        let k_tiles = k.div_ceil(TILE);
        let want = dev.sm_count()?.div_ceil(tiles);
        let splits = want.min(k_tiles / MIN_SPLIT_TILES).max(1);
        // Whole k tiles per split; recount so that no split is empty.
        let kchunk = k_tiles.div_ceil(splits) * TILE;
        let splits = k.div_ceil(kchunk);
        let counters = if splits > 1 {
            Some(DeviceBuffer::zeroed(dev, tiles * 4)?)
        } else {
            None
        };
        let z = x.shape[0] * splits;
        if z > 65_535 {
            return Err(Error::Unsupported(format!(
                "pointwise grid of {z} images × splits"
            )));
        }
        Ok(Split {
            splits,
            kchunk,
            counters,
            part_bytes: if splits > 1 {
                splits * tiles * TILE * TILE * acc
            } else {
                0
            },
            grid: (
                plane.div_ceil(TILE) as u32,
                m.div_ceil(TILE) as u32,
                z as u32,
            ),
        })
    }

    /// The kernel's `PwSplit` argument, its parts in `scratch`.
    pub fn args(&self, scratch: u64) -> PwSplitArgs {
        PwSplitArgs {
            splits: self.splits as i32,
            kchunk: self.kchunk as i32,
            part: scratch,
            counters: self.counters.as_ref().map_or(0, |c| c.ptr),
        }
    }
}

struct PointwiseKernel {
    f: CudaFunction,
    p: PointwiseParams,
    has_bias: bool,
    residual: Option<usize>,
    split: Split,
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
        split: Split::new(b.dev, x, y.shape[1], 4)?,
    }))
}

impl CudaKernel for PointwiseKernel {
    fn scratch_bytes(&self) -> usize {
        self.split.part_bytes
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (x, w, y) = (io.inputs[0], io.inputs[1], io.outputs[0]);
        let bias = if self.has_bias { io.inputs[2] } else { 0 };
        let res = self.residual.map_or(0, |r| io.inputs[r]);
        let split = self.split.args(io.scratch);
        // SAFETY: (const T* x, const T* w, const T* bias, const T* res, T* y,
        // PointwiseParams p, PwSplit<float> pw); the buffers hold the shapes `p` and the
        // split were built from; bias (m values) and res (y's shape) are null when absent;
        // scratch holds the split's parts.
        unsafe {
            dev.launch_grid3(
                &self.f,
                self.split.grid,
                256,
                &mut [
                    arg(&x),
                    arg(&w),
                    arg(&bias),
                    arg(&res),
                    arg(&y),
                    arg(&self.p),
                    arg(&split),
                ],
            )
        }
    }
}

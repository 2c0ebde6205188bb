//! CUDA kernels, one file per op, one folder per family, mirroring `cpu::ops`.
//!
//! Each op file holds its support check (`supports`: a pure function of the op and its facts,
//! usable without a GPU, which is what `inspect --backend cuda` shows), its builder (`build`:
//! descriptors, kernel handles and sizes, once at load) and its launch (enqueue on the stream,
//! captured into the session's CUDA graph), plus a test against the CPU kernel that says it was
//! skipped when no GPU is present. Ops or dtypes not listed here run on the CPU (per node).

pub mod elementwise;
pub mod linalg;
pub mod nn;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod shape;
#[cfg(test)]
pub(crate) mod testing;

use cudarc::driver::DeviceRepr;

use super::device::Device;
use super::fuse::{Fused, Prologue};
use crate::ir::{Fact, Op};
use crate::tensor::{DType, TensorView};
use crate::Result;

/// Device addresses of one node's operands, resolved by the session's plan.
pub struct Io<'a> {
    pub inputs: &'a [u64],
    pub outputs: &'a [u64],
    /// The plan's scratch region (64-byte aligned), `scratch_bytes` long.
    pub scratch: u64,
}

/// A kernel prepared for one node.
pub trait CudaKernel: Send + Sync {
    /// Device scratch bytes `launch` needs (shared between nodes).
    fn scratch_bytes(&self) -> usize {
        0
    }
    /// Enqueues the node's work on the device's stream. It is captured into a CUDA graph, so it
    /// must not synchronise, allocate device memory, or read host memory that changes per run.
    fn launch(&self, dev: &Device, io: &Io) -> Result<()>;
}

/// What a builder sees: the device, the node's facts, and constant inputs (weights) on the host.
pub struct BuildCtx<'a> {
    pub dev: &'a Device,
    pub inputs: &'a [Fact],
    /// The node's outputs; with `fused`, the absorbed reader's.
    pub outputs: &'a [Fact],
    pub consts: &'a [Option<TensorView<'a>>],
    /// The reader the kernel runs too (`cuda::fuse`), or None.
    pub fused: Option<&'a Fused>,
    /// The transform the kernel applies to its data input as it loads it (`cuda::fuse`): the
    /// writer's bias (then the node's last input) and activation.
    pub prologue: Option<&'a Prologue>,
}

/// Why a node stays on the CPU, or Ok when a CUDA kernel exists for it.
pub type Support = std::result::Result<(), String>;

/// Whether `op` with these facts has a CUDA kernel. Needs no GPU.
pub fn supports(op: &Op, inputs: &[Fact], outputs: &[Fact]) -> Support {
    match op {
        Op::Conv(o) => nn::conv::supports(o, inputs, outputs),
        Op::Pool(o) => nn::pool::supports(o, inputs, outputs),
        Op::GlobalPool(o) => nn::global_pool::supports(o, inputs, outputs),
        Op::Gemm(o) => linalg::gemm::supports(o, inputs, outputs),
        Op::MatMul(_) => linalg::matmul::supports(inputs, outputs),
        Op::Binary(o) => elementwise::binary::supports(o, inputs, outputs),
        Op::Unary(o) => elementwise::unary::supports(o, inputs, outputs),
        Op::Cast(o) => elementwise::cast::supports(o, inputs),
        Op::Softmax(_) => reduce::softmax::supports(inputs, outputs),
        Op::Reshape(_) => Ok(()),
        Op::Transpose(_) => shape::transpose::supports(inputs),
        Op::Concat(_) => shape::concat::supports(inputs),
        Op::Slice(_) => shape::slice::supports(inputs),
        Op::Split(_) => shape::split::supports(inputs),
        Op::Expand(_) => shape::expand::supports(inputs, outputs),
        Op::Gather(_) => shape::gather::supports(inputs),
        Op::Pad(_) => shape::pad::supports(inputs),
        Op::Lstm(o) => recurrent::lstm::supports(o, inputs, outputs),
        Op::Gru(o) => recurrent::gru::supports(o, inputs, outputs),
        Op::QuantizeLinear(o) => quant::quantize::supports(o, inputs),
        Op::DequantizeLinear(_) => quant::dequantize::supports(inputs),
        Op::QConv(o) => quant::qconv::supports(o, inputs, outputs),
        Op::QGemm(o) => quant::qgemm::supports(o, inputs, outputs),
        Op::QAdd(o) => quant::qadd::supports(o, inputs, outputs),
        Op::QPool(o) => quant::qpool::supports(o, inputs, outputs),
        Op::DynamicQuantizeLinear(_) => quant::dynamic_quantize::supports(inputs),
        Op::QGather(_) => quant::qgather::supports(inputs, outputs),
        Op::QLstm(o) => quant::qrnn::supports_lstm(o, inputs, outputs),
        Op::QGru(o) => quant::qrnn::supports_gru(o, inputs, outputs),
        Op::DynamicQuantizeConv(o) => quant::dynamic_conv::supports(o, inputs, outputs),
        Op::DynamicQuantizeMatMul(o) => quant::dynamic_matmul::supports(o, inputs, outputs),
        other => Err(format!("no CUDA kernel for {}", other.name())),
    }
}

/// Builds the CUDA kernel for one op (after `supports` said yes).
pub fn build(op: &Op, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    build_gate(op, b.inputs, b.outputs, b.fused, b.prologue).map_err(crate::Error::Unsupported)?;
    if let Some(f) = b.fused {
        // Only the kernels `cuda::fuse::absorbs` names take a reader.
        return match (op, &f.op) {
            (Op::Conv(o), Op::Pool(_)) => nn::conv_direct::build(o, b),
            (Op::Gemm(o), Op::Softmax(_) | Op::Gemm(_)) => linalg::gemm::build(o, b),
            (Op::QConv(o), Op::QAdd(_)) => quant::qconv::build(o, b),
            (op, r) => Err(crate::Error::Unsupported(format!(
                "{} cannot run a {} in its kernel",
                op.name(),
                r.name()
            ))),
        };
    }
    match op {
        Op::Conv(o) => nn::conv::build(o, b),
        Op::Pool(o) => nn::pool::build(o, b),
        Op::GlobalPool(o) => nn::global_pool::build(o, b),
        Op::Gemm(o) => linalg::gemm::build(o, b),
        Op::MatMul(_) => linalg::matmul::build(b),
        Op::Binary(o) => elementwise::binary::build(o, b),
        Op::Unary(o) => elementwise::unary::build(o, b),
        Op::Cast(o) => elementwise::cast::build(o, b),
        Op::Softmax(o) => reduce::softmax::build(o, b),
        Op::Reshape(_) => Ok(Box::new(NoOp)),
        Op::Transpose(o) => shape::transpose::build(o, b),
        Op::Concat(o) => shape::concat::build(o, b),
        Op::Slice(o) => shape::slice::build(o, b),
        Op::Split(o) => shape::split::build(o, b),
        Op::Expand(_) => shape::expand::build(b),
        Op::Gather(o) => shape::gather::build(o, b),
        Op::Pad(o) => shape::pad::build(o, b),
        Op::Lstm(o) => recurrent::lstm::build(o, b),
        Op::Gru(o) => recurrent::gru::build(o, b),
        Op::QuantizeLinear(o) => quant::quantize::build(o, b),
        Op::DequantizeLinear(o) => quant::dequantize::build(o, b),
        Op::QConv(o) => quant::qconv::build(o, b),
        Op::QGemm(o) => quant::qgemm::build(o, b),
        Op::QAdd(o) => quant::qadd::build(o, b),
        Op::QPool(o) => quant::qpool::build(o, b),
        Op::DynamicQuantizeLinear(_) => quant::dynamic_quantize::build(b),
        Op::QGather(o) => quant::qgather::build(o, b),
        Op::QLstm(o) => quant::qrnn::build_lstm(o, b),
        Op::QGru(o) => quant::qrnn::build_gru(o, b),
        Op::DynamicQuantizeConv(o) => quant::dynamic_conv::build(o, b),
        Op::DynamicQuantizeMatMul(o) => quant::dynamic_matmul::build(o, b),
        other => Err(crate::Error::Unsupported(format!(
            "no CUDA kernel for {}",
            other.name()
        ))),
    }
}

/// What [`build`] checks before it builds a node of the device graph (no GPU needed, so tests
/// ask it of every node a lowering makes): its own op's [`supports`] on its own inputs (those
/// fusion appended left out) and, when it runs a reader, on its own output; and only the ops
/// that can take a prologue have one.
pub fn build_gate(
    op: &Op,
    inputs: &[Fact],
    outputs: &[Fact],
    fused: Option<&Fused>,
    prologue: Option<&Prologue>,
) -> Support {
    if prologue.is_some() && !matches!(op, Op::Conv(_) | Op::GlobalPool(_)) {
        return Err(format!("{} cannot apply its writer's epilogue", op.name()));
    }
    let extra = fused.map_or(0, |f| f.extra) + usize::from(prologue.is_some_and(|p| p.bias));
    let own = inputs
        .get(..inputs.len().saturating_sub(extra))
        .unwrap_or(&[]);
    match fused {
        Some(f) => supports_as_built(op, own, std::slice::from_ref(&f.mid), prologue),
        None => supports_as_built(op, own, outputs, prologue),
    }
}

/// [`supports`] for a node as the device graph builds it: a data input narrowed as the
/// kernel loads it (`Prologue::narrow`, an f32 value the op computes on in f16) is asked about
/// as the f16 value it becomes.
pub fn supports_as_built(
    op: &Op,
    inputs: &[Fact],
    outputs: &[Fact],
    prologue: Option<&Prologue>,
) -> Support {
    if prologue.is_some_and(|p| p.narrow) && !inputs.is_empty() {
        let mut narrowed = inputs.to_vec();
        narrowed[0] = Fact::new(crate::DType::F16, narrowed[0].shape.clone());
        return supports(op, &narrowed, outputs);
    }
    supports(op, inputs, outputs)
}

/// Views: the output aliases the input, nothing to launch.
pub struct NoOp;

impl CudaKernel for NoOp {
    fn launch(&self, _: &Device, _: &Io) -> Result<()> {
        Ok(())
    }
}

/// The kernel-name suffix of an arithmetic dtype (`f32`, `f16`), if our kernels compute in it.
/// Threads that share one output's reduction of `terms` terms in our reduction kernels
/// (QConv, the direct convolution): about 16 terms each, a power of two, at most a warp and at
/// most `most`.
pub fn lanes_for(terms: usize, most: usize) -> i32 {
    let per = (terms / 16).clamp(1, 32).min(most.max(1));
    (1usize << per.ilog2()) as i32
}

pub fn float_suffix(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("f32"),
        DType::F16 => Some("f16"),
        _ => None,
    }
}

/// The kernel-name suffix of a data-movement kernel: by element size.
pub fn size_suffix(dtype: DType) -> &'static str {
    match dtype.size() {
        8 => "i64",
        4 => "f32",
        2 => "f16",
        _ => "u8",
    }
}

/// `Dims` in `kernels/cuda/prelude.cuh`: up to six extents or strides, passed by value.
pub const MAX_RANK: usize = 6;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct Dims(pub [i64; MAX_RANK]);

// SAFETY: plain `repr(C)` integers, the layout of the CUDA struct.
unsafe impl DeviceRepr for Dims {}

impl Dims {
    /// From a list of at most six values (the caller checked the rank).
    pub fn from(v: impl IntoIterator<Item = i64>) -> Dims {
        let mut d = Dims::default();
        for (k, x) in v.into_iter().enumerate().take(MAX_RANK) {
            d.0[k] = x;
        }
        d
    }
}

/// Row-major element strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1] as i64;
    }
    s
}

/// Checks a rank against what the kernels' `Dims` hold.
pub fn check_rank(rank: usize) -> Support {
    if rank > MAX_RANK {
        Err(format!("rank {rank} > {MAX_RANK}"))
    } else {
        Ok(())
    }
}

/// Requires an arithmetic dtype our kernels compute in.
pub fn check_float(f: &Fact) -> Support {
    float_suffix(f.dtype)
        .map(|_| ())
        .ok_or_else(|| format!("{} tensors", f.dtype))
}

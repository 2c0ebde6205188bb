//! CPU kernels, one file per op, one folder per family, mirroring `ir::ops`.
//!
//! Each op provides a builder, `build(op, inputs, outputs, consts) -> Box<dyn CpuKernel>`, called
//! once when the plan is made: it checks support, precomputes everything that depends only on
//! shapes and constants (strides, packed weights), and reports the scratch it needs. `run` then
//! executes without allocating.

pub mod elementwise;
pub mod linalg;
pub mod nn;
pub mod norm;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod shape;

use crate::ir::{Fact, Op};
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

/// Execution context handed to every kernel.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Threads the kernel may use (the session's pool size). 1 means stay on the calling thread:
    /// no rayon call at all (no `join`, no `par_*`, even over one chunk), because the calling
    /// thread may be outside every pool — a session whose batch is cut runs one part on the
    /// caller's own thread — where rayon would hand the work to its global pool.
    pub threads: usize,
}

/// A kernel prepared for one node: static shapes, constants resolved.
pub trait CpuKernel: Send + Sync {
    /// Bytes of scratch memory `run` needs (64-byte aligned, uninitialised, shared between nodes).
    fn scratch_bytes(&self) -> usize {
        0
    }
    /// Computes the outputs. Inputs and outputs never overlap. Must not allocate.
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()>;
}

/// What a builder sees: the op, its input and output facts, and the value of each input that is a
/// constant (weights), so it can pre-pack them.
pub struct BuildCtx<'a> {
    pub inputs: &'a [Fact],
    pub outputs: &'a [Fact],
    pub consts: &'a [Option<TensorView<'a>>],
}

/// Builds the CPU kernel for one op.
pub fn build(op: &Op, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    match op {
        Op::Conv(o) => nn::conv::build(o, b),
        Op::ConvTranspose(o) => nn::conv_transpose::build(o, b),
        Op::Pool(o) => nn::pool::build(o, b),
        Op::GlobalPool(o) => nn::global_pool::build(o, b),
        Op::BatchNorm(o) => nn::batchnorm::build(o, b),
        Op::Gemm(o) => linalg::gemm::build(o, b),
        Op::MatMul(o) => linalg::matmul::build(o, b),
        Op::Binary(o) => elementwise::binary::build(o, b),
        Op::Unary(o) => elementwise::unary::build(o, b),
        Op::Softmax(o) => reduce::softmax::build(o, b),
        Op::Reduce(o) => reduce::reduce::build(o, b),
        Op::Reshape(_) => shape::reshape::build(b),
        Op::Transpose(o) => shape::transpose::build(o, b),
        Op::Concat(o) => shape::concat::build(o, b),
        Op::Slice(o) => shape::slice::build(o, b),
        Op::Gather(o) => shape::gather::build(o, b),
        Op::Pad(o) => shape::pad::build(o, b),
        Op::Cast(o) => shape::cast::build(o, b),
        Op::Split(o) => shape::split::build(o, b),
        Op::Resize(o) => shape::resize::build(o, b),
        Op::Expand(o) => shape::expand::build(o, b),
        Op::Where(o) => shape::where_::build(o, b),
        Op::Lstm(o) => recurrent::lstm::build(o, b),
        Op::Gru(o) => recurrent::gru::build(o, b),
        Op::QuantizeLinear(o) => quant::quantize::build(o, b),
        Op::DequantizeLinear(o) => quant::dequantize::build(o, b),
        Op::DynamicQuantizeLinear(_) => quant::dynamic_quantize::build(b),
        Op::QConv(o) => quant::qconv::build(o, b),
        Op::QGemm(o) => quant::qgemm::build(o, b),
        Op::QAdd(o) => quant::qadd::build(o, b),
        Op::QPool(o) => quant::qpool::build(o, b),
        Op::QLstm(o) => quant::qlstm::build(o, b),
        Op::QGru(o) => quant::qgru::build(o, b),
        Op::QGather(o) => quant::qgather::build(o, b),
        Op::DynamicQuantizeMatMul(o) => quant::dynamic_matmul::build(o, b),
        Op::DynamicQuantizeConv(o) => quant::dynamic_conv::build(o, b),
        Op::LayerNorm(o) => norm::layer_norm::build(o, b),
        Op::InstanceNorm(o) => norm::instance_norm::build(o, b),
        Op::LpNorm(o) => norm::lp_norm::build(o, b),
        Op::ArgReduce(o) => reduce::arg::build(o, b),
        Op::TopK(o) => reduce::topk::build(o, b),
        Op::CumSum(o) => reduce::cumsum::build(o, b),
        Op::GatherElements(o) => shape::gather_elements::build(o, b),
    }
}

/// Evaluates one op on owned tensors (the compiler's constant folding and tests).
pub fn eval(op: &Op, inputs: &[&crate::Tensor]) -> Result<Vec<crate::Tensor>> {
    eval_threads(op, inputs, 1)
}

/// [`eval`] with `threads` for the kernel to split its work over (tests of threaded paths).
pub(crate) fn eval_threads(
    op: &Op,
    inputs: &[&crate::Tensor],
    threads: usize,
) -> Result<Vec<crate::Tensor>> {
    let facts: Vec<Fact> = inputs
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
    let out_facts = op.infer(&facts)?;
    if op.is_view() {
        // Views are planned as aliases and their kernel writes nothing: copy the bytes here.
        return Ok(vec![crate::Tensor::from_bytes(
            out_facts[0].dtype,
            &out_facts[0].shape,
            inputs[0].bytes(),
        )?]);
    }
    let views: Vec<TensorView> = inputs.iter().map(|t| t.view()).collect();
    let consts: Vec<Option<TensorView>> = views.iter().map(|v| Some(*v)).collect();
    let kernel = build(
        op,
        &BuildCtx {
            inputs: &facts,
            outputs: &out_facts,
            consts: &consts,
        },
    )?;
    let mut outs: Vec<crate::Tensor> = out_facts
        .iter()
        .map(|f| crate::Tensor::zeros(f.dtype, &f.shape))
        .collect();
    let mut scratch = crate::tensor::AlignedBuf::zeroed(kernel.scratch_bytes());
    {
        let mut out_views: Vec<TensorViewMut> = outs.iter_mut().map(|t| t.view_mut()).collect();
        kernel.run(
            &views,
            &mut out_views,
            scratch.as_mut_slice(),
            &Ctx { threads },
        )?;
    }
    Ok(outs)
}

/// A kernel that does nothing (views, whose output aliases the input).
pub struct NoOp;

impl CpuKernel for NoOp {
    fn run(&self, _: &[TensorView], _: &mut [TensorViewMut], _: &mut [u8], _: &Ctx) -> Result<()> {
        Ok(())
    }
}

/// Returned by builders for an op/dtype combination not implemented yet.
pub fn unsupported<T>(what: impl std::fmt::Display) -> Result<T> {
    Err(crate::Error::Unsupported(format!(
        "the CPU backend does not implement {what}"
    )))
}

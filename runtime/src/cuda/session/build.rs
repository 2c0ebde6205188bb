//! A session's load-time work: the device graph at the chosen precision, one kernel per node
//! (CUDA, else CPU), and the weights uploaded once.
//!
//! An f16 kernel that fails to build on the device (say cuDNN has no f16 algorithm for one
//! convolution) sends its node back to f32, and the graph is lowered again; an f32 kernel that
//! fails to build moves its node to the CPU, as the fp32 path always did; a fused kernel
//! (`cuda::fuse`, `cuda::carry`) that fails to build sends its node back unfused, and the
//! graph is lowered again.

use std::borrow::Cow;

use cudarc::driver::result as dr;

use super::ALIGN;
use crate::cpu::ops::{self as cpu_ops, CpuKernel};
use crate::cuda::device::{cuda_err, Device, DeviceBuffer};
use crate::cuda::ops::{self, BuildCtx, CudaKernel};
use crate::cuda::placement::Placement;
use crate::cuda::precision::{lower_fusing, Lowered, Precision};
use crate::ir::Fact;
use crate::tensor::{DType, TensorView};
use crate::{Error, Model, Result};

/// The kernel of one device-graph node.
pub(super) enum Kernel {
    Gpu(Box<dyn CudaKernel>),
    Cpu(Box<dyn CpuKernel>),
}

/// Everything `CudaSession::new` needs from the load.
pub(super) struct Built {
    pub lowered: Lowered,
    /// Per model node, after building.
    pub placements: Vec<Placement>,
    /// Per device node.
    pub kernels: Vec<Kernel>,
    /// Device scratch and host scratch the kernels need.
    pub scratch: usize,
    pub host_scratch: usize,
    pub weights: DeviceBuffer,
    /// Per device tensor: its offset in `weights` (constants only).
    pub const_offsets: Vec<Option<u64>>,
    /// Build time per op (GPU kernels), slowest first: (op, nodes, ms).
    pub build_ms: Vec<(&'static str, usize, f64)>,
    /// Time to narrow and upload the constants.
    pub upload_ms: f64,
}

/// A lowering and the constants the device will hold for it: the device-free part of a
/// round, which `CudaSession::new` does for the first round on a thread of its own while the
/// driver and context start.
pub(super) struct Round<'m> {
    lowered: Lowered,
    /// Per device tensor: a constant as the device holds it (narrowed copies made here).
    host: Vec<Option<Cow<'m, [u8]>>>,
}

impl<'m> Round<'m> {
    pub fn new(
        model: &'m Model,
        precision: Precision,
        keep_f32: &[bool],
        unfused: &[bool],
    ) -> Result<Self> {
        let lowered = lower_fusing(model.graph(), precision, keep_f32, unfused);
        // Weights as the file stores them: an fp16 file's f16 weights go to the device as they are.
        let host = lowered.constants(|o| model.stored_constant(o))?;
        Ok(Round { lowered, host })
    }

    /// The first round: nothing kept in f32, everything fused unless `fuse` is off.
    pub fn first(model: &'m Model, precision: Precision, fuse: bool) -> Result<Self> {
        let n = model.graph().nodes.len();
        Round::new(model, precision, &vec![false; n], &vec![!fuse; n])
    }

    /// Whether a GPU node of this lowering runs on cuDNN (whose libraries can then be loaded
    /// before the device is open: `dnn::preload`).
    pub fn needs_cudnn(&self) -> bool {
        let l = &self.lowered;
        l.graph.nodes.iter().enumerate().any(|(k, node)| {
            let on_gpu = l.node_origin[k].is_none_or(|j| l.placements[j].is_gpu());
            let fact = |t: usize| l.graph.tensors[t].fact();
            match &node.op {
                crate::ir::Op::Conv(c) if on_gpu && !node.outputs.is_empty() => {
                    ops::nn::conv::runs_on_cudnn(c, &fact(node.inputs[0]), &fact(node.outputs[0]))
                }
                _ => false,
            }
        })
    }
}

/// Lowers, builds and uploads, starting from `first` (`Round::first` with the same
/// `precision` and `fuse`); see the module documentation.
pub(super) fn build<'m>(
    dev: &Device,
    model: &'m Model,
    precision: Precision,
    fuse: bool,
    first: Round<'m>,
) -> Result<Built> {
    let n = model.graph().nodes.len();
    let (mut keep_f32, mut unfused) = (vec![false; n], vec![!fuse; n]);
    let mut round = Some(first);
    loop {
        let this = match round.take() {
            Some(r) => r,
            None => Round::new(model, precision, &keep_f32, &unfused)?,
        };
        match try_build(dev, model, this)? {
            Ok(built) => return Ok(built),
            // Each round flags nodes not flagged before, so this ends.
            Err(Failed::F16(nodes)) => nodes.into_iter().for_each(|j| keep_f32[j] = true),
            Err(Failed::Fused(nodes)) => nodes.into_iter().for_each(|j| unfused[j] = true),
        }
    }
}

/// Model nodes to lower again: f16 kernels that failed (then f32), or fused kernels that
/// failed in f32 (then unfused, each node with its own kernel or the CPU's).
enum Failed {
    F16(Vec<usize>),
    Fused(Vec<usize>),
}

/// Builds every kernel of `lowered`, or returns the model nodes to lower again.
fn try_build(
    dev: &Device,
    model: &Model,
    round: Round,
) -> Result<std::result::Result<Built, Failed>> {
    let Round { lowered, host } = round;
    let graph = &lowered.graph;
    let mut placements = lowered.placements.clone();
    let mut kernels = Vec::with_capacity(graph.nodes.len());
    let (mut failed_f16, mut failed_fused) = (Vec::new(), Vec::new());
    let (mut scratch, mut host_scratch) = (0usize, 0usize);
    let mut build_ms: Vec<(&'static str, usize, f64)> = Vec::new();
    for (k, node) in graph.nodes.iter().enumerate() {
        let facts =
            |ids: &[usize]| -> Vec<Fact> { ids.iter().map(|&i| graph.tensors[i].fact()).collect() };
        let (inputs, outputs) = (facts(&node.inputs), facts(&node.outputs));
        let consts: Vec<Option<TensorView>> = node
            .inputs
            .iter()
            .map(|&i| {
                let info = &graph.tensors[i];
                host[i].as_deref().map(|data| TensorView {
                    dtype: info.dtype,
                    shape: &info.shape,
                    data,
                })
            })
            .collect();
        let origin = lowered.node_origin[k];
        let node_err = |e: Error| Error::Node {
            index: origin.unwrap_or(k),
            name: node.name.clone(),
            op: node.op.name().into(),
            msg: e.to_string(),
        };
        if origin.is_none_or(|j| placements[j].is_gpu()) {
            let b = BuildCtx {
                dev,
                inputs: &inputs,
                outputs: &outputs,
                consts: &consts,
                fused: lowered.fused[k].as_ref(),
                prologue: lowered.prologue[k].as_ref(),
            };
            let t = std::time::Instant::now();
            let built = ops::build(&node.op, &b);
            let e = build_ms
                .iter()
                .position(|x| x.0 == node.op.name())
                .unwrap_or_else(|| {
                    build_ms.push((node.op.name(), 0, 0.0));
                    build_ms.len() - 1
                });
            build_ms[e].1 += 1;
            build_ms[e].2 += t.elapsed().as_secs_f64() * 1e3;
            match built {
                Ok(kernel) => {
                    scratch = scratch.max(kernel.scratch_bytes());
                    kernels.push(Kernel::Gpu(kernel));
                    continue;
                }
                Err(e) => match origin {
                    // A convolution narrowing its f32 input as it pads: first without that
                    // (the cast back as a kernel), still in f16.
                    Some(j) if lowered.prologue[k].as_ref().is_some_and(|p| p.narrow) => {
                        failed_fused.push(j);
                        continue;
                    }
                    Some(j) if lowered.node_dtype[j] == Some(DType::F16) => {
                        failed_f16.push(j);
                        continue;
                    }
                    // A fused node's outputs are its reader's, or its input lacks its writer's
                    // epilogue or bias, or its bias is computed (which the CPU, reading the
                    // model's constants, would not see): the CPU kernel of its own op would not
                    // do. Lowered again without that fusion, it and its partners build on
                    // their own.
                    Some(j)
                        if lowered.fused[k].is_some()
                            || lowered.prologue[k].is_some()
                            || lowered.carried[k]
                            || node.inputs.iter().any(|t| lowered.derived.contains_key(t)) =>
                    {
                        failed_fused.push(j);
                        continue;
                    }
                    Some(j) => {
                        placements[j] = Placement::Cpu(format!("CUDA kernel failed to build: {e}"))
                    }
                    // An inserted cast runs on the CPU like any other node.
                    None => {}
                },
            }
        }
        // A CPU node reads the model's own constants when it runs (`exec`): widen f16-stored
        // ones now, so no run allocates.
        for &i in &node.inputs {
            if graph.tensors[i].weight.is_some() {
                let _ = model.constant(lowered.origin[i]);
            }
        }
        let b = cpu_ops::BuildCtx {
            inputs: &inputs,
            outputs: &outputs,
            consts: &consts,
        };
        let kernel = cpu_ops::build(&node.op, &b).map_err(node_err)?;
        host_scratch = host_scratch.max(kernel.scratch_bytes());
        kernels.push(Kernel::Cpu(kernel));
    }
    if !failed_f16.is_empty() {
        return Ok(Err(Failed::F16(failed_f16)));
    }
    if !failed_fused.is_empty() {
        return Ok(Err(Failed::Fused(failed_fused)));
    }
    build_ms.sort_by(|a, b| b.2.total_cmp(&a.2));
    let t = std::time::Instant::now();
    let (weights, const_offsets) = upload(dev, &host)?;
    let upload_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(host);
    Ok(Ok(Built {
        lowered,
        placements,
        kernels,
        scratch,
        host_scratch,
        weights,
        const_offsets,
        build_ms,
        upload_ms,
    }))
}

/// One device buffer holding every constant at its own aligned offset, uploaded once.
fn upload(dev: &Device, host: &[Option<Cow<[u8]>>]) -> Result<(DeviceBuffer, Vec<Option<u64>>)> {
    let mut offsets = vec![None; host.len()];
    let mut len = 0usize;
    for (id, c) in host.iter().enumerate() {
        if let Some(c) = c {
            offsets[id] = Some(len as u64);
            len += c.len().div_ceil(ALIGN) * ALIGN;
        }
    }
    let weights = DeviceBuffer::zeroed(dev, len)?;
    for (off, c) in offsets.iter().zip(host) {
        if let (Some(off), Some(c)) = (off, c) {
            if !c.is_empty() {
                // SAFETY: the buffer reserved `c.len()` bytes at `off` above.
                unsafe { dr::memcpy_htod_sync(weights.ptr + off, &c[..]) }
                    .map_err(|e| cuda_err("uploading weights", e))?;
            }
        }
    }
    // The uploads above ran on the legacy stream: finish them before our stream reads.
    dev.ctx
        .synchronize()
        .map_err(|e| cuda_err("uploading weights", e))?;
    Ok((weights, offsets))
}

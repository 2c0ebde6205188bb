//! Executes a planned graph on the GPU.
//!
//! Load: the memory plan is the CPU backend's (`cpu::plan`), laid over one device arena; every
//! constant is uploaded once into one device buffer (as `Model::constant` gives it); each node
//! gets a CUDA kernel or, when it has none, a CPU kernel plus explicit copies (device → host
//! before, host → device after). Consecutive GPU nodes form a segment; each segment is captured
//! as a CUDA graph after one warm-up run, so an inference is one graph launch per segment (one
//! in total when every node is on the GPU). Inputs and outputs go through one page-locked host
//! buffer: copied in and out inside the graph on discrete GPUs, mapped and used in place on
//! integrated ones (Jetson). `run` allocates nothing.

use std::ops::Range;
use std::sync::Arc;

use cudarc::driver::{result as dr, sys as ds, CudaGraph};
use smallvec::SmallVec;

use super::device::{cuda_err, Device, DeviceBuffer, HostBuffer};
use super::ops::{self, BuildCtx, CudaKernel, Io};
use super::placement::Placement;
use crate::cpu::ops::{self as cpu_ops, CpuKernel, Ctx};
use crate::cpu::plan::{self, MemoryPlan, Slot};
use crate::ir::{Fact, TensorId};
use crate::tensor::{AlignedBuf, TensorView, TensorViewMut};
use crate::{Error, Model, Result, Tensor};

/// Options of a CUDA session.
#[derive(Debug, Clone)]
pub struct CudaOptions {
    /// Which GPU.
    pub ordinal: usize,
    /// NVRTC target (`sm_87`); default: the device's compute capability. A board profile sets it.
    pub arch: Option<String>,
    /// Map inputs and outputs instead of copying; default: when the GPU is integrated.
    pub mapped_io: Option<bool>,
    /// Capture CUDA graphs (default); off launches node by node (for debugging and comparison).
    pub graphs: bool,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            ordinal: 0,
            arch: None,
            mapped_io: None,
            graphs: true,
        }
    }
}

enum Step {
    Gpu {
        kernel: Box<dyn CudaKernel>,
        inputs: Vec<u64>,
        outputs: Vec<u64>,
    },
    Cpu {
        node: usize,
        kernel: Box<dyn CpuKernel>,
        /// (device address, host-mirror offset, bytes) copied down before the node.
        to_host: Vec<(u64, usize, usize)>,
        /// … and copied up after it.
        to_device: Vec<(u64, usize, usize)>,
    },
}

enum Segment {
    Gpu {
        steps: Range<usize>,
        first: bool,
        last: bool,
        graph: Option<CudaGraph>,
    },
    Cpu(usize),
}

/// One graph input or output in the pinned I/O buffer.
struct IoSlot {
    tensor: TensorId,
    host_offset: usize,
    dev: u64,
    len: usize,
}

/// A model ready to run on the GPU.
pub struct CudaSession {
    model: Arc<Model>,
    plan: MemoryPlan,
    placements: Vec<Placement>,
    steps: Vec<Step>,
    segments: Vec<Segment>,
    // Field order is drop order: graphs and kernels (above) before the memory they use, the
    // memory before the device.
    io: HostBuffer,
    inputs: Vec<IoSlot>,
    outputs: Vec<IoSlot>,
    mapped: bool,
    host: AlignedBuf,
    host_scratch: AlignedBuf,
    _weights: DeviceBuffer,
    _arena: DeviceBuffer,
    dev: Device,
}

// SAFETY: the session owns its device resources; `run` takes &mut self, so nothing is shared.
unsafe impl Send for CudaSession {}

/// Root storage of each tensor: views resolve to their input's root (as in `cpu::plan`).
fn roots(model: &Model) -> Vec<TensorId> {
    let g = model.graph();
    let mut root: Vec<TensorId> = (0..g.tensors.len()).collect();
    for n in &g.nodes {
        if n.op.is_view() {
            root[n.outputs[0]] = root[n.inputs[0]];
        }
    }
    root
}

const ALIGN: usize = 256;

impl CudaSession {
    pub fn new(model: Arc<Model>, opts: &CudaOptions) -> Result<CudaSession> {
        let dev = Device::open(opts.ordinal, opts.arch.as_deref())?;
        let graph = model.graph();
        let mapped = opts.mapped_io.unwrap_or(dev.info.integrated);

        // Weights: one device buffer, each constant at its own aligned offset, uploaded once.
        // Offsets are ours, not the file's: a constant's bytes as the model gives them may
        // differ in size from what the file stores (f16-stored weights are widened on load).
        let mut const_offsets: Vec<Option<u64>> = vec![None; graph.tensors.len()];
        let mut weights_len = 0usize;
        for (id, t) in graph.tensors.iter().enumerate() {
            if t.weight.is_some() {
                if let Some(c) = model.constant(id) {
                    const_offsets[id] = Some(weights_len as u64);
                    weights_len += c.data.len().div_ceil(ALIGN) * ALIGN;
                }
            }
        }
        let weights = DeviceBuffer::zeroed(&dev, weights_len)?;
        for (id, off) in const_offsets.iter().enumerate() {
            if let (Some(off), Some(c)) = (off, model.constant(id)) {
                if !c.data.is_empty() {
                    // SAFETY: the buffer reserved `c.data.len()` bytes at `off` above.
                    unsafe { dr::memcpy_htod_sync(weights.ptr + off, c.data) }
                        .map_err(|e| cuda_err("uploading weights", e))?;
                }
            }
        }
        // The uploads above ran on the legacy stream: finish them before our stream reads.
        dev.ctx
            .synchronize()
            .map_err(|e| cuda_err("uploading weights", e))?;

        // Kernels (GPU, else CPU), then the plan with the largest scratch either needs.
        let mut placements = super::placement::placements(graph);
        let mut gpu_kernels: Vec<Option<Box<dyn CudaKernel>>> = Vec::new();
        let mut cpu_kernels: Vec<Option<Box<dyn CpuKernel>>> = Vec::new();
        let (mut scratch, mut host_scratch) = (0usize, 0usize);
        for (k, node) in graph.nodes.iter().enumerate() {
            let facts: Vec<Fact> = node
                .inputs
                .iter()
                .map(|&i| graph.tensors[i].fact())
                .collect();
            let out_facts: Vec<Fact> = node
                .outputs
                .iter()
                .map(|&o| graph.tensors[o].fact())
                .collect();
            let consts: Vec<Option<TensorView>> =
                node.inputs.iter().map(|&i| model.constant(i)).collect();
            let node_err = |e: Error| Error::Node {
                index: k,
                name: node.name.clone(),
                op: node.op.name().into(),
                msg: e.to_string(),
            };
            let mut gpu = None;
            if placements[k].is_gpu() {
                let b = BuildCtx {
                    dev: &dev,
                    inputs: &facts,
                    outputs: &out_facts,
                    consts: &consts,
                };
                match ops::build(&node.op, &b) {
                    Ok(kernel) => gpu = Some(kernel),
                    Err(e) => {
                        placements[k] = Placement::Cpu(format!("CUDA kernel failed to build: {e}"))
                    }
                }
            }
            let mut cpu = None;
            if let Some(kernel) = &gpu {
                scratch = scratch.max(kernel.scratch_bytes());
            } else {
                let b = cpu_ops::BuildCtx {
                    inputs: &facts,
                    outputs: &out_facts,
                    consts: &consts,
                };
                let kernel = cpu_ops::build(&node.op, &b).map_err(node_err)?;
                host_scratch = host_scratch.max(kernel.scratch_bytes());
                cpu = Some(kernel);
            }
            gpu_kernels.push(gpu);
            cpu_kernels.push(cpu);
        }
        let plan = plan::plan(graph, scratch.div_ceil(ALIGN) * ALIGN)?;
        let arena = DeviceBuffer::zeroed(&dev, plan.arena_bytes())?;

        // Inputs and outputs in one pinned buffer.
        let root = roots(&model);
        let mut io_offsets: Vec<(TensorId, usize, usize)> = Vec::new();
        let mut io_len = 0usize;
        for &t in graph.inputs.iter().chain(&graph.outputs) {
            let len = graph.tensors[t].byte_len();
            io_offsets.push((t, io_len, len));
            io_len += len.div_ceil(ALIGN) * ALIGN;
        }
        let io = HostBuffer::new(&dev, io_len, mapped)?;
        // Mapped: a graph input or output root (not a constant) lives in the I/O buffer.
        let mut remap: std::collections::HashMap<TensorId, u64> = Default::default();
        if let (true, Some(base)) = (mapped, io.dev_ptr) {
            for &(t, off, _) in &io_offsets {
                let r = root[t];
                if graph.tensors[r].weight.is_none() {
                    remap.entry(r).or_insert(base + off as u64);
                }
            }
        }
        let ptr = |t: TensorId| -> u64 {
            if let Some(&p) = remap.get(&root[t]) {
                return p;
            }
            match plan.slots[t] {
                Slot::Const(r) => weights.ptr + const_offsets[r].unwrap_or(0),
                Slot::Arena { offset, .. } => arena.ptr + offset as u64,
            }
        };
        let slot = |&(t, host_offset, len): &(TensorId, usize, usize)| IoSlot {
            tensor: t,
            host_offset,
            dev: ptr(t),
            len,
        };
        let n_in = graph.inputs.len();
        let inputs: Vec<IoSlot> = io_offsets[..n_in].iter().map(slot).collect();
        let outputs: Vec<IoSlot> = io_offsets[n_in..].iter().map(slot).collect();

        // Steps, with explicit copies around CPU nodes.
        let host_offset = |t: TensorId| match plan.slots[t] {
            Slot::Arena { offset, len } => Some((offset, len)),
            Slot::Const(_) => None,
        };
        let mut steps = Vec::with_capacity(graph.nodes.len());
        for (k, node) in graph.nodes.iter().enumerate() {
            match (gpu_kernels[k].take(), cpu_kernels[k].take()) {
                (Some(kernel), _) => steps.push(Step::Gpu {
                    kernel,
                    inputs: node.inputs.iter().map(|&t| ptr(t)).collect(),
                    outputs: node.outputs.iter().map(|&t| ptr(t)).collect(),
                }),
                (None, Some(kernel)) => {
                    let copies = |ids: &[TensorId]| -> Vec<(u64, usize, usize)> {
                        ids.iter()
                            .filter_map(|&t| host_offset(t).map(|(o, l)| (ptr(t), o, l)))
                            .collect()
                    };
                    steps.push(Step::Cpu {
                        node: k,
                        kernel,
                        to_host: copies(&node.inputs),
                        to_device: copies(&node.outputs),
                    });
                }
                (None, None) => unreachable!("every node got a kernel above"),
            }
        }
        let any_cpu = steps.iter().any(|s| matches!(s, Step::Cpu { .. }));
        let host = AlignedBuf::zeroed(if any_cpu { plan.tensor_bytes } else { 0 });

        let mut session = CudaSession {
            segments: segments(&steps),
            model,
            plan,
            placements,
            steps,
            io,
            inputs,
            outputs,
            mapped,
            host,
            host_scratch: AlignedBuf::zeroed(host_scratch),
            _weights: weights,
            _arena: arena,
            dev,
        };
        // One eager run (libraries finish their lazy set-up), then capture.
        session.run()?;
        if opts.graphs {
            session.capture()?;
        }
        Ok(session)
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
    pub fn plan(&self) -> &MemoryPlan {
        &self.plan
    }
    pub fn device(&self) -> &super::DeviceInfo {
        &self.dev.info
    }
    /// Where each node runs (after building: a kernel that failed to build moved to the CPU).
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }
    /// CUDA graphs launched per inference (0 when graphs are off).
    pub fn graph_launches(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Gpu { graph: Some(_), .. }))
            .count()
    }
    /// Whether inputs and outputs are mapped host memory (integrated GPUs).
    pub fn mapped_io(&self) -> bool {
        self.mapped
    }

    /// Writes input `index` into the pinned I/O buffer. Shape and dtype must match.
    pub fn set_input(&mut self, index: usize, value: TensorView) -> Result<()> {
        let graph = self.model.graph();
        let Some(slot) = self.inputs.get(index) else {
            return Err(Error::invalid(format!(
                "the model has {} inputs, no input #{index}",
                graph.inputs.len()
            )));
        };
        let info = &graph.tensors[slot.tensor];
        if value.dtype != info.dtype || value.shape != &info.shape[..] {
            return Err(Error::BadInput {
                name: info.name.clone(),
                msg: format!(
                    "expected {} {:?}, got {} {:?}",
                    info.dtype, info.shape, value.dtype, value.shape
                ),
            });
        }
        let (off, len) = (slot.host_offset, slot.len);
        self.io.as_mut_slice()[off..off + len].copy_from_slice(value.data);
        Ok(())
    }

    /// Output `index` of the last run.
    pub fn output(&self, index: usize) -> TensorView<'_> {
        let slot = &self.outputs[index];
        let info = &self.model.graph().tensors[slot.tensor];
        TensorView {
            dtype: info.dtype,
            shape: &info.shape,
            data: &self.io.as_slice()[slot.host_offset..slot.host_offset + slot.len],
        }
    }

    /// Runs the graph on the inputs set: one graph launch per segment, CPU nodes in between.
    pub fn run(&mut self) -> Result<()> {
        for s in 0..self.segments.len() {
            match &self.segments[s] {
                Segment::Gpu { graph: Some(g), .. } => {
                    g.launch().map_err(|e| cuda_err("CUDA graph launch", e))?
                }
                Segment::Gpu {
                    steps, first, last, ..
                } => self.enqueue(steps.clone(), *first, *last)?,
                Segment::Cpu(k) => self.run_cpu(*k)?,
            }
        }
        self.dev.synchronize()
    }

    /// Convenience: sets every input, runs, and copies the outputs out (allocates the results).
    pub fn run_tensors(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let n = self.inputs.len();
        if inputs.len() != n {
            return Err(Error::invalid(format!(
                "the model takes {n} inputs, {} given",
                inputs.len()
            )));
        }
        for (i, t) in inputs.iter().enumerate() {
            self.set_input(i, t.view())?;
        }
        self.run()?;
        (0..self.outputs.len())
            .map(|i| {
                let v = self.output(i);
                Tensor::from_bytes(v.dtype, v.shape, v.data)
            })
            .collect()
    }

    /// Enqueues one GPU segment: input uploads if first, its nodes, output downloads if last.
    fn enqueue(&self, steps: Range<usize>, first: bool, last: bool) -> Result<()> {
        let stream = self.dev.cu_stream();
        if first && !self.mapped {
            for s in &self.inputs {
                let src = &self.io.as_slice()[s.host_offset..s.host_offset + s.len];
                // SAFETY: pinned source and device destination both hold `len` bytes; the pinned
                // buffer outlives every graph that captured this copy.
                unsafe { dr::memcpy_htod_async(s.dev, src, stream) }
                    .map_err(|e| cuda_err("uploading inputs", e))?;
            }
        }
        for k in steps {
            if let Step::Gpu {
                kernel,
                inputs,
                outputs,
            } = &self.steps[k]
            {
                let io = Io {
                    inputs,
                    outputs,
                    scratch: self._arena.ptr + self.plan.scratch_offset as u64,
                };
                kernel
                    .launch(&self.dev, &io)
                    .map_err(|e| self.node_err(k, e))?;
            }
        }
        if last && !self.mapped {
            for s in &self.outputs {
                let base = self.io.as_ptr() as *mut u8;
                // SAFETY: the slot lies inside the pinned buffer; the copy is ordered before the
                // stream synchronisation that precedes any read of it.
                let dst = unsafe { std::slice::from_raw_parts_mut(base.add(s.host_offset), s.len) };
                // SAFETY: as above; the device source holds `len` bytes.
                unsafe { dr::memcpy_dtoh_async(dst, s.dev, stream) }
                    .map_err(|e| cuda_err("downloading outputs", e))?;
            }
        }
        Ok(())
    }

    fn node_err(&self, k: usize, e: Error) -> Error {
        let node = match &self.steps[k] {
            Step::Cpu { node, .. } => *node,
            Step::Gpu { .. } => k,
        };
        let n = &self.model.graph().nodes[node];
        Error::Node {
            index: node,
            name: n.name.clone(),
            op: n.op.name().into(),
            msg: e.to_string(),
        }
    }

    /// Captures every GPU segment as a CUDA graph. A segment whose capture fails stays eager.
    fn capture(&mut self) -> Result<()> {
        let stream = self.dev.stream.clone();
        for s in 0..self.segments.len() {
            let Segment::Gpu {
                steps, first, last, ..
            } = &self.segments[s]
            else {
                continue;
            };
            let (steps, first, last) = (steps.clone(), *first, *last);
            stream
                .begin_capture(ds::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(|e| cuda_err("beginning graph capture", e))?;
            let enqueued = self.enqueue(steps, first, last);
            let captured = stream.end_capture(ds::CUgraphInstantiate_flags(0));
            match (enqueued, captured) {
                (Ok(()), Ok(Some(g))) => {
                    g.upload()
                        .map_err(|e| cuda_err("uploading a CUDA graph", e))?;
                    if let Segment::Gpu { graph, .. } = &mut self.segments[s] {
                        *graph = Some(g);
                    }
                }
                // Nothing captured (an empty segment) or capture refused: stay eager.
                _ => {}
            }
        }
        self.dev.synchronize()
    }

    /// Runs CPU node `k`: copies its inputs down, runs the CPU kernel on the host mirror,
    /// copies its outputs up.
    fn run_cpu(&mut self, k: usize) -> Result<()> {
        self.dev.synchronize()?;
        let Step::Cpu {
            node,
            kernel,
            to_host,
            to_device,
        } = &self.steps[k]
        else {
            return Ok(());
        };
        let stream = self.dev.cu_stream();
        let host = self.host.as_mut_slice();
        for &(dev, off, len) in to_host {
            // SAFETY: the device address holds `len` bytes; the copy is ordered on the session's
            // stream and completes before the synchronisation below.
            unsafe { dr::memcpy_dtoh_async(&mut host[off..off + len], dev, stream) }
                .map_err(|e| cuda_err("copying a CPU node's input down", e))?;
        }
        self.dev.synchronize()?;
        let graph = self.model.graph();
        let n = &graph.nodes[*node];
        let base = host.as_mut_ptr();
        let view_of = |t: TensorId| -> &[u8] {
            match self.plan.slots[t] {
                Slot::Const(r) => self.model.constant(r).map_or(&[][..], |c| c.data),
                // SAFETY: the plan keeps [offset, offset+len) inside the tensor region, which the
                // mirror covers; outputs of this node never overlap its inputs. Reads only.
                Slot::Arena { offset, len } => unsafe {
                    std::slice::from_raw_parts(base.add(offset), len)
                },
            }
        };
        let ins: SmallVec<[TensorView; 8]> = n
            .inputs
            .iter()
            .map(|&t| TensorView {
                dtype: graph.tensors[t].dtype,
                shape: &graph.tensors[t].shape,
                data: view_of(t),
            })
            .collect();
        let mut outs: SmallVec<[TensorViewMut; 4]> = n
            .outputs
            .iter()
            .map(|&t| {
                let data: &mut [u8] = match self.plan.slots[t] {
                    // SAFETY: in bounds as above; outputs of one node are disjoint from each
                    // other and from its inputs.
                    Slot::Arena { offset, len } => unsafe {
                        std::slice::from_raw_parts_mut(base.add(offset), len)
                    },
                    Slot::Const(_) => &mut [],
                };
                TensorViewMut {
                    dtype: graph.tensors[t].dtype,
                    shape: &graph.tensors[t].shape,
                    data,
                }
            })
            .collect();
        kernel
            .run(
                &ins,
                &mut outs,
                self.host_scratch.as_mut_slice(),
                &Ctx { threads: 1 },
            )
            .map_err(|e| self.node_err(k, e))?;
        drop(outs);
        let host = self.host.as_slice();
        for &(dev, off, len) in to_device {
            // SAFETY: the device address holds `len` bytes. From pageable memory the driver
            // stages the bytes before returning, and the copy is ordered on the session's stream
            // before the nodes that read it.
            unsafe { dr::memcpy_htod_async(dev, &host[off..off + len], stream) }
                .map_err(|e| cuda_err("copying a CPU node's output up", e))?;
        }
        Ok(())
    }
}

/// Splits steps into GPU runs and single CPU nodes; the first and last segments are GPU ones
/// (possibly empty), which upload the inputs and download the outputs.
fn segments(steps: &[Step]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0;
    for (k, s) in steps.iter().enumerate() {
        if matches!(s, Step::Cpu { .. }) {
            out.push(Segment::Gpu {
                steps: start..k,
                first: out.is_empty(),
                last: false,
                graph: None,
            });
            out.push(Segment::Cpu(k));
            start = k + 1;
        }
    }
    out.push(Segment::Gpu {
        steps: start..steps.len(),
        first: out.is_empty(),
        last: true,
        graph: None,
    });
    out
}

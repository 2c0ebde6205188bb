//! Executes a planned graph on the GPU, in fp32 or fp16.
//!
//! Load (`build`): the model's graph is lowered for the session's precision
//! (`cuda::precision`: fp16 narrows activations and weights, with casts at the edges); every
//! constant of that graph is uploaded once into one device buffer; each node gets a CUDA kernel
//! or, when it has none, a CPU kernel plus explicit copies (device → host before, host → device
//! after). The memory plan is the CPU backend's (`cpu::plan`) over the lowered graph, laid over
//! one device arena. Running (`exec`): consecutive GPU nodes form a segment; each segment is
//! captured as a CUDA graph after one warm-up run, so an inference is one graph launch per
//! segment (one in total when every node is on the GPU). Inputs and outputs go through one page-locked host
//! buffer: copied in and out inside the graph on discrete GPUs, mapped and used in place on
//! integrated ones (Jetson); in fp16, a small input or output (`precision::HOST_CAST_MAX`) is
//! held there in f16, narrowed by `set_input` and widened after the run. `run` allocates
//! nothing.

mod build;
mod exec;

use std::sync::Arc;

use self::build::Kernel;
use self::exec::{segments, Segment, Step};
use super::device::{cuda_err, Device, DeviceBuffer, HostBuffer, Phases};
use super::placement::Placement;
use super::precision::{Lowered, Precision};
use crate::cpu::plan::{self, MemoryPlan, Slot};
use crate::ir::TensorId;
use crate::tensor::{AlignedBuf, DType, TensorView};
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
    /// What float tensors compute in; default: fp16 when the model's weights are stored as f16
    /// (`compile --precision fp16`), else fp32 ([`Precision::of`]).
    pub precision: Option<Precision>,
    /// Let kernels run their readers and writers' epilogues and biases (`cuda::fuse`,
    /// `cuda::carry`), and the host convert small f16 inputs and outputs
    /// (`precision::HOST_CAST_MAX`); default. Off runs every node in its own kernel, with the
    /// edge casts as kernels (for comparison).
    pub fuse: bool,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            ordinal: 0,
            arch: None,
            mapped_io: None,
            graphs: true,
            precision: None,
            fuse: true,
        }
    }
}

/// One graph input or output in the pinned I/O buffer.
struct IoSlot {
    tensor: TensorId,
    host_offset: usize,
    dev: u64,
    len: usize,
    /// The device holds it in f16, the caller sees f32 (`Lowered::host_inputs`/`host_outputs`):
    /// an input is narrowed as it is copied in; an output is widened after the run into this
    /// buffer (aligned: callers view it as f32).
    host_cast: Option<AlignedBuf>,
}

/// A model ready to run on the GPU.
pub struct CudaSession {
    model: Arc<Model>,
    /// The graph that runs (the model's, or its fp16 lowering); steps are its nodes.
    lowered: Lowered,
    plan: MemoryPlan,
    /// Per model node.
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
    /// How long each step of the load took.
    phases: Phases,
    /// Per-node timing with CUDA events, when turned on (runs node by node, not as graphs).
    profile: Option<exec::Profile>,
}

// SAFETY: the session owns its device resources; `run` takes &mut self, so nothing is shared.
unsafe impl Send for CudaSession {}

const ALIGN: usize = 256;

impl CudaSession {
    pub fn new(model: Arc<Model>, opts: &CudaOptions) -> Result<CudaSession> {
        let precision = opts
            .precision
            .unwrap_or_else(|| Precision::of(model.graph()));
        // While the driver initialises and the context starts (~0.2 s on an H200), another
        // thread loads NVRTC, lowers the graph, prepares the device's constants and, where a
        // convolution will run on cuDNN, loads cuDNN's libraries.
        let (dev, first) = std::thread::scope(|s| {
            // The main thread's stack size: lowering recurses over the graph.
            let beside = std::thread::Builder::new().stack_size(8 << 20);
            let host = beside.spawn_scoped(s, || {
                let t = std::time::Instant::now();
                // NVRTC's version keys the kernel cache: its library loads here, not after the
                // context.
                let _ = crate::cuda::nvrtc::version();
                let first = build::Round::first(&model, precision, opts.fuse)?;
                if first.needs_cudnn() {
                    crate::cuda::dnn::preload();
                }
                Ok::<_, Error>((first, t.elapsed().as_secs_f64() * 1e3))
            });
            let dev = Device::open(opts.ordinal, opts.arch.as_deref());
            let joined = match host {
                Ok(h) => h.join(),
                Err(e) => Ok(Err(Error::Cuda(format!("cannot start a thread: {e}")))),
            };
            let first = joined.unwrap_or_else(|panic| {
                Err(Error::Cuda(format!(
                    "preparing the session beside the driver's start panicked: {}",
                    crate::error::panic_message(&*panic)
                )))
            });
            (dev, first)
        });
        let (dev, (first, beside_ms)) = (dev?, first?);
        let mut phases = dev.phases.clone();
        phases.steps.push((
            "  beside those: NVRTC loaded, graph lowered, constants prepared, cuDNN loaded if needed".into(),
            beside_ms,
        ));
        let mapped = opts.mapped_io.unwrap_or(dev.info.integrated);
        let built = build::build(&dev, &model, precision, opts.fuse, first)?;
        phases.mark("graph lowered, kernels built, weights uploaded");
        // … and what that step spent, by op (the big ones), and on the upload.
        for &(op, n, ms) in &built.build_ms {
            if ms >= 1.0 {
                phases
                    .steps
                    .push((format!("  of which {n} {op} kernel(s) built"), ms));
            }
        }
        phases.steps.push((
            "  of which constants narrowed and uploaded".into(),
            built.upload_ms,
        ));
        if let Some(dnn) = dev.dnn_if_loaded() {
            let (kept, asked) = dnn.choices.counts();
            phases.steps.push((
                format!("  of which cuDNN algorithms: {kept} kept on disk, {asked} asked (in the lines above)"),
                0.0,
            ));
        }
        let graph = &built.lowered.graph;
        let (weights, const_offsets) = (built.weights, built.const_offsets);
        let scratch = built.scratch;
        // In place only where a CUDA kernel writes the output (a CPU kernel's output and
        // inputs are separate slices of the host mirror).
        let on_gpu = |o: &TensorId| {
            let k = graph.nodes.iter().position(|n| n.outputs.contains(o));
            k.is_some_and(|k| matches!(built.kernels[k], Kernel::Gpu(_)))
        };
        let in_place: Vec<(TensorId, TensorId)> = built
            .lowered
            .in_place
            .iter()
            .copied()
            .filter(|(o, _)| on_gpu(o))
            .collect();
        let plan = plan::plan_in_place(graph, scratch.div_ceil(ALIGN) * ALIGN, &in_place)?;
        let arena = DeviceBuffer::zeroed(&dev, plan.arena_bytes())?;

        // Inputs and outputs in one pinned buffer.
        let root = graph.storage_roots();
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
                // A constant nothing reads was not uploaded: null, never another's bytes.
                Slot::Const(r) => const_offsets[r].map_or(0, |o| weights.ptr + o),
                Slot::Arena { offset, .. } => arena.ptr + offset as u64,
            }
        };
        let slot = |(&(t, host_offset, len), &cast): (&(TensorId, usize, usize), &bool)| IoSlot {
            tensor: t,
            host_offset,
            dev: ptr(t),
            len,
            // f16 on the device, f32 for the caller: twice the bytes.
            host_cast: cast.then(|| AlignedBuf::zeroed(len * 2)),
        };
        let n_in = graph.inputs.len();
        let l = &built.lowered;
        let inputs: Vec<IoSlot> = io_offsets[..n_in]
            .iter()
            .zip(&l.host_inputs)
            .map(slot)
            .collect();
        let outputs: Vec<IoSlot> = io_offsets[n_in..]
            .iter()
            .zip(&l.host_outputs)
            .map(slot)
            .collect();

        // Steps, with explicit copies around CPU nodes.
        let host_offset = |t: TensorId| match plan.slots[t] {
            Slot::Arena { offset, len } => Some((offset, len)),
            Slot::Const(_) => None,
        };
        let mut steps = Vec::with_capacity(graph.nodes.len());
        for (k, (node, kernel)) in graph.nodes.iter().zip(built.kernels).enumerate() {
            steps.push(match kernel {
                Kernel::Gpu(kernel) => Step::Gpu {
                    kernel,
                    inputs: node.inputs.iter().map(|&t| ptr(t)).collect(),
                    outputs: node.outputs.iter().map(|&t| ptr(t)).collect(),
                },
                Kernel::Cpu(kernel) => {
                    let copies = |ids: &[TensorId]| -> Vec<(u64, usize, usize)> {
                        ids.iter()
                            .filter_map(|&t| host_offset(t).map(|(o, l)| (ptr(t), o, l)))
                            .collect()
                    };
                    Step::Cpu {
                        node: k,
                        kernel,
                        to_host: copies(&node.inputs),
                        to_device: copies(&node.outputs),
                    }
                }
            });
        }
        phases.mark("memory plan, arena and I/O buffers");
        let any_cpu = steps.iter().any(|s| matches!(s, Step::Cpu { .. }));
        let host = crate::cpu::session::alloc(
            if any_cpu { plan.tensor_bytes } else { 0 },
            "host memory for the CPU nodes",
        )?;

        let mut session = CudaSession {
            segments: segments(&steps),
            model,
            lowered: built.lowered,
            plan,
            placements: built.placements,
            steps,
            io,
            inputs,
            outputs,
            mapped,
            host,
            host_scratch: crate::cpu::session::alloc(built.host_scratch, "CPU node scratch")?,
            _weights: weights,
            _arena: arena,
            dev,
            phases,
            profile: None,
        };
        // One eager run (libraries finish their lazy set-up), then capture.
        session.run()?;
        session.phases.mark("eager warm-up run");
        if opts.graphs {
            session.capture()?;
            session.phases.mark("CUDA graph capture");
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
    /// Where each model node runs (after building: a kernel that failed to build moved to the
    /// CPU).
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }
    /// What float tensors compute in.
    pub fn precision(&self) -> Precision {
        self.lowered.precision
    }
    /// Per model node: the float dtype it computes in (None: an int8 or integer op), after building
    /// (an f16 kernel that failed to build ran its node in f32).
    pub fn node_dtypes(&self) -> &[Option<DType>] {
        &self.lowered.node_dtype
    }
    /// Per model node: the model node whose kernel runs it, when fused into it (`cuda::fuse`).
    pub fn absorbed(&self) -> &[Option<usize>] {
        &self.lowered.absorbed
    }
    /// The graph the GPU runs: the model's, or its fp16 lowering (with the inserted casts),
    /// less the nodes fused into others.
    pub fn device_graph(&self) -> &crate::ir::Graph {
        &self.lowered.graph
    }
    /// What device node `k` runs: its op, `+` the reader fused into its kernel, `+in-act` when
    /// it applies its input's writer's epilogue (`cuda::fuse`).
    pub fn node_label(&self, k: usize) -> String {
        let mut label = self.lowered.graph.nodes[k].op.name().to_string();
        let mut f = self.lowered.fused[k].as_ref();
        while let Some(x) = f {
            label = format!("{label}+{}", x.op.name());
            f = x.next.as_deref();
        }
        match &self.lowered.prologue[k] {
            Some(p) if p.narrow => label.push_str("+narrow"),
            Some(_) => label.push_str("+in-act"),
            None => {}
        }
        label
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
        let graph = &self.lowered.graph;
        let Some(slot) = self.inputs.get(index) else {
            return Err(Error::invalid(format!(
                "the model has {} inputs, no input #{index}",
                graph.inputs.len()
            )));
        };
        let (off, len) = (slot.host_offset, slot.len);
        let dst = &mut self.io.as_mut_slice()[off..off + len];
        if slot.host_cast.is_some() {
            let model = self.model.graph();
            model.tensors[model.inputs[index]].check_value(&value)?;
            crate::tensor::narrow_f32_bytes(value.data, dst);
        } else {
            graph.tensors[slot.tensor].check_value(&value)?;
            dst.copy_from_slice(value.data);
        }
        Ok(())
    }

    /// Output `index` of the last run.
    pub fn output(&self, index: usize) -> TensorView<'_> {
        let slot = &self.outputs[index];
        if let Some(wide) = &slot.host_cast {
            let model = self.model.graph();
            let info = &model.tensors[model.outputs[index]];
            return TensorView {
                dtype: info.dtype,
                shape: &info.shape,
                data: wide.as_slice(),
            };
        }
        let info = &self.lowered.graph.tensors[slot.tensor];
        TensorView {
            dtype: info.dtype,
            shape: &info.shape,
            data: &self.io.as_slice()[slot.host_offset..slot.host_offset + slot.len],
        }
    }

    /// Widens the outputs the device wrote in f16 for a caller expecting f32 (after a run).
    fn widen_outputs(&mut self) {
        let io = self.io.as_slice();
        for slot in &mut self.outputs {
            if let Some(wide) = &mut slot.host_cast {
                crate::tensor::widen_f16_bytes(
                    &io[slot.host_offset..slot.host_offset + slot.len],
                    wide.as_mut_slice(),
                );
            }
        }
    }

    /// The steps of the load (device, kernels, libraries, build, warm-up, capture) in ms.
    pub fn load_phases(&self) -> &[(String, f64)] {
        &self.phases.steps
    }

    /// Per-node timing: while on, `run` launches node by node with a CUDA event between nodes
    /// (no graph replay, so the total is above a replayed run's). Off drops the times.
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        self.profile = if on {
            Some(exec::Profile::new(self.steps.len())?)
        } else {
            None
        };
        Ok(())
    }

    /// Per node of [`Self::device_graph`]: time and runs since profiling was turned on.
    pub fn profile(&self) -> Option<&[crate::cpu::NodeTime]> {
        self.profile.as_ref().map(|p| &p.times[..])
    }

    /// Runs the graph on the inputs set: one graph launch per segment, CPU nodes in between.
    pub fn run(&mut self) -> Result<()> {
        if self.profile.is_some() {
            self.run_profiled()?;
            self.widen_outputs();
            return Ok(());
        }
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
        self.dev.synchronize()?;
        self.widen_outputs();
        Ok(())
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
}

#[cfg(test)]
mod tests;

//! Running a built session: GPU segments enqueued (or replayed as captured CUDA graphs), CPU
//! nodes in between with their explicit copies.

use std::ops::Range;

use cudarc::driver::{result as dr, sys as ds, CudaGraph};
use smallvec::SmallVec;

use super::CudaSession;
use crate::cpu::ops::{CpuKernel, Ctx};
use crate::cpu::plan::Slot;
use crate::cpu::NodeTime;
use crate::cuda::device::cuda_err;
use crate::cuda::ops::{CudaKernel, Io};
use crate::ir::TensorId;
use crate::tensor::{TensorView, TensorViewMut};
use crate::{Error, Result};

pub(super) enum Step {
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

/// Per-node timing: one event before each step and one after the last.
pub(super) struct Profile {
    events: Vec<ds::CUevent>,
    pub times: Vec<NodeTime>,
    /// When every node is on the GPU: the whole run captured with the events in it, so the
    /// times are the nodes' own on the GPU (as in a replayed run) and not the host's launch
    /// overhead, which a node-by-node run would measure for short kernels.
    graph: Option<CudaGraph>,
    /// Capture was tried (and `graph` is what came of it).
    tried: bool,
}

impl Profile {
    pub fn new(steps: usize) -> Result<Profile> {
        let mut p = Profile {
            events: Vec::with_capacity(steps + 1),
            times: vec![NodeTime::default(); steps],
            graph: None,
            tried: false,
        };
        for _ in 0..=steps {
            let e = dr::event::create(ds::CUevent_flags::CU_EVENT_DEFAULT)
                .map_err(|e| cuda_err("creating a timing event", e))?;
            p.events.push(e);
        }
        Ok(p)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        // The graph refers to the events: it goes first.
        self.graph.take();
        for &e in &self.events {
            // SAFETY: created by `Profile::new`, destroyed once; nothing records them after.
            unsafe { dr::event::destroy(e) }.ok();
        }
    }
}

pub(super) enum Segment {
    Gpu {
        steps: Range<usize>,
        first: bool,
        last: bool,
        graph: Option<CudaGraph>,
    },
    Cpu(usize),
}

impl CudaSession {
    /// Enqueues one GPU segment: input uploads if first, its nodes, output downloads if last.
    pub(super) fn enqueue(&self, steps: Range<usize>, first: bool, last: bool) -> Result<()> {
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

    /// `e` at device node `k`, named as the model node it runs (or the inserted cast).
    fn node_err(&self, k: usize, e: Error) -> Error {
        let n = &self.lowered.graph.nodes[k];
        Error::Node {
            index: self.lowered.node_origin[k].unwrap_or(k),
            name: n.name.clone(),
            op: n.op.name().into(),
            msg: e.to_string(),
        }
    }

    /// Captures every GPU segment as a CUDA graph. A segment whose capture fails stays eager.
    pub(super) fn capture(&mut self) -> Result<()> {
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
            // Nothing captured (an empty segment) or capture refused: the segment stays eager.
            if let (Ok(()), Ok(Some(g))) = (enqueued, captured) {
                g.upload()
                    .map_err(|e| cuda_err("uploading a CUDA graph", e))?;
                if let Segment::Gpu { graph, .. } = &mut self.segments[s] {
                    *graph = Some(g);
                }
            }
        }
        self.dev.synchronize()
    }

    /// `run` with per-node timing: every step launched on its own between two events.
    pub(super) fn run_profiled(&mut self) -> Result<()> {
        let n = self.steps.len();
        let all_gpu = self.steps.iter().all(|s| matches!(s, Step::Gpu { .. }));
        if all_gpu && !self.profile.as_ref().is_some_and(|p| p.tried) {
            let stream = self.dev.stream.clone();
            stream
                .begin_capture(ds::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(|e| cuda_err("beginning graph capture", e))?;
            let enqueued = self.enqueue_timed(true);
            let captured = stream.end_capture(ds::CUgraphInstantiate_flags(0));
            if let Some(p) = self.profile.as_mut() {
                p.tried = true;
                if let (Ok(()), Ok(Some(g))) = (enqueued, captured) {
                    p.graph = Some(g);
                }
            }
        }
        match self.profile.as_ref().and_then(|p| p.graph.as_ref()) {
            Some(g) => g.launch().map_err(|e| cuda_err("CUDA graph launch", e))?,
            None => self.enqueue_timed(false)?,
        }
        self.dev.synchronize()?;
        if let Some(p) = self.profile.as_mut() {
            for k in 0..n {
                // SAFETY: both events were recorded above and the stream has finished.
                let ms = unsafe { dr::event::elapsed(p.events[k], p.events[k + 1]) }
                    .map_err(|e| cuda_err("reading a timing event", e))?;
                p.times[k].nanos += (ms as f64 * 1e6) as u64;
                p.times[k].calls += 1;
            }
        }
        Ok(())
    }

    /// Enqueues a whole run with an event before each step and after the last (`external`:
    /// as event-record nodes of a graph being captured).
    fn enqueue_timed(&mut self, external: bool) -> Result<()> {
        let stream = self.dev.cu_stream();
        let n = self.steps.len();
        self.enqueue(0..0, true, false)?;
        for k in 0..=n {
            let ev = self
                .profile
                .as_ref()
                .map_or(std::ptr::null_mut(), |p| p.events[k]);
            if external {
                // SAFETY: a live event of this context, recorded on the session's stream as an
                // event-record node of the graph being captured (1: CU_EVENT_RECORD_EXTERNAL).
                unsafe { ds::cuEventRecordWithFlags(ev, stream, 1).result() }
            } else {
                // SAFETY: a live event of this context, recorded on the session's stream.
                unsafe { dr::event::record(ev, stream) }
            }
            .map_err(|e| cuda_err("recording a timing event", e))?;
            if k == n {
                break;
            }
            match self.steps[k] {
                Step::Gpu { .. } => self.enqueue(k..k + 1, false, false)?,
                Step::Cpu { .. } => self.run_cpu(k)?,
            }
        }
        self.enqueue(0..0, false, true)
    }

    /// Runs CPU node `k`: copies its inputs down, runs the CPU kernel on the host mirror,
    /// copies its outputs up.
    pub(super) fn run_cpu(&mut self, k: usize) -> Result<()> {
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
        let graph = &self.lowered.graph;
        let n = &graph.nodes[*node];
        let base = host.as_mut_ptr();
        let view_of = |t: TensorId| -> &[u8] {
            match self.plan.slots[t] {
                // CPU nodes read constants in their stored dtype (the lowering never narrows
                // what a CPU node reads), so the model's own bytes serve.
                Slot::Const(r) => self
                    .model
                    .constant(self.lowered.origin[r])
                    .filter(|c| c.dtype == graph.tensors[r].dtype)
                    .map_or(&[][..], |c| c.data),
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
pub(super) fn segments(steps: &[Step]) -> Vec<Segment> {
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

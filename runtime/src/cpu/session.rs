//! Executes a planned graph: inputs written into the arena, one kernel per node, outputs read
//! from the arena. Nothing is allocated per inference.

use std::sync::Arc;

use smallvec::SmallVec;

use super::ops::{self, BuildCtx, CpuKernel, Ctx};
use super::plan::{self, MemoryPlan, Slot};
use crate::ir::{Fact, TensorId};
use crate::tensor::{AlignedBuf, TensorView, TensorViewMut};
use crate::{Error, Model, Result, Tensor};

/// Options for a CPU session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Worker threads (1 = run on the caller's thread only). Default: available cores, at most 8.
    /// More than [`super::max_threads`] is refused by [`Session::new`].
    pub threads: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        let cores = super::cores();
        SessionOptions {
            threads: cores.min(8),
        }
    }
}

struct Step {
    kernel: Box<dyn CpuKernel>,
    inputs: Vec<TensorId>,
    outputs: Vec<TensorId>,
}

/// A model ready to run on the CPU: kernels built, memory planned, arena allocated.
pub struct Session {
    model: Arc<Model>,
    plan: MemoryPlan,
    steps: Vec<Step>,
    arena: AlignedBuf,
    pool: Option<super::worker::Worker>,
    threads: usize,
    /// Per-node wall time, summed over runs, when profiling is on (`set_profiling`).
    profile: Option<Vec<NodeTime>>,
}

/// Time spent in one node over every profiled run.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeTime {
    pub nanos: u64,
    pub calls: u64,
}

impl Session {
    pub fn new(model: Arc<Model>, opts: SessionOptions) -> Result<Session> {
        let threads = super::check_threads(opts.threads)?;
        let graph = model.graph();
        let mut steps = Vec::with_capacity(graph.nodes.len());
        let mut scratch = 0;
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
                node.inputs.iter().map(|&i| const_view(&model, i)).collect();
            let kernel = ops::build(
                &node.op,
                &BuildCtx {
                    inputs: &facts,
                    outputs: &out_facts,
                    consts: &consts,
                },
            )
            .map_err(|e| Error::Node {
                index: k,
                name: node.name.clone(),
                op: node.op.name().into(),
                msg: e.to_string(),
            })?;
            scratch = scratch.max(kernel.scratch_bytes());
            steps.push(Step {
                kernel,
                inputs: node.inputs.clone(),
                outputs: node.outputs.clone(),
            });
        }
        let plan = plan::plan(graph, scratch)?;
        let arena = AlignedBuf::zeroed(plan.arena_bytes());
        let pool = if threads > 1 {
            let w = super::worker::Worker::new(threads)
                .map_err(|e| Error::invalid(format!("cannot start {threads} threads: {e}")))?;
            Some(w)
        } else {
            None
        };
        Ok(Session {
            model,
            plan,
            steps,
            arena,
            pool,
            threads,
            profile: None,
        })
    }

    /// Turns per-node timing on (clearing earlier times) or off. Timing reads the clock twice
    /// per node, so it stays off unless asked for.
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(|| vec![NodeTime::default(); self.steps.len()]);
    }

    /// Per-node times since profiling was turned on, indexed like the graph's nodes.
    pub fn profile(&self) -> Option<&[NodeTime]> {
        self.profile.as_deref()
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
    pub fn plan(&self) -> &MemoryPlan {
        &self.plan
    }
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Writes input `index` (position among the graph inputs). Shape and dtype must match.
    pub fn set_input(&mut self, index: usize, value: TensorView) -> Result<()> {
        let graph = self.model.graph();
        let Some(&id) = graph.inputs.get(index) else {
            return Err(Error::invalid(format!(
                "the model has {} inputs, no input #{index}",
                graph.inputs.len()
            )));
        };
        let info = &graph.tensors[id];
        if value.dtype != info.dtype || value.shape != &info.shape[..] {
            return Err(Error::BadInput {
                name: info.name.clone(),
                msg: format!(
                    "expected {} {:?}, got {} {:?}",
                    info.dtype, info.shape, value.dtype, value.shape
                ),
            });
        }
        if let Slot::Arena { offset, len } = self.plan.slots[id] {
            self.arena.as_mut_slice()[offset..offset + len].copy_from_slice(value.data);
        }
        Ok(())
    }

    /// Output `index` of the last run.
    pub fn output(&self, index: usize) -> TensorView<'_> {
        let graph = self.model.graph();
        let id = graph.outputs[index];
        tensor_view(&self.model, &self.plan, self.arena.as_slice(), id)
    }

    /// Runs the graph on the inputs set. Allocation-free after the first call.
    pub fn run(&mut self) -> Result<()> {
        let ctx = Ctx {
            threads: self.threads,
        };
        let Session {
            model,
            plan,
            steps,
            arena,
            pool,
            profile,
            ..
        } = self;
        let mut profile = profile.as_deref_mut();
        match pool {
            Some(w) => {
                let mut result = Ok(());
                let mut job =
                    || result = execute(model, plan, steps, arena, &ctx, profile.as_deref_mut());
                if !w.run(&mut job) {
                    return Err(Error::invalid(
                        "the CPU worker thread stopped after a kernel panicked",
                    ));
                }
                result
            }
            None => execute(model, plan, steps, arena, &ctx, profile),
        }
    }

    /// Convenience: sets every input, runs, and copies the outputs out (allocates the results).
    pub fn run_tensors(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let n = self.model.graph().inputs.len();
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
        (0..self.model.graph().outputs.len())
            .map(|i| {
                let v = self.output(i);
                Tensor::from_bytes(v.dtype, v.shape, v.data)
            })
            .collect()
    }
}

fn const_view(model: &Model, id: TensorId) -> Option<TensorView<'_>> {
    model.constant(id)
}

fn tensor_view<'a>(
    model: &'a Model,
    plan: &MemoryPlan,
    arena: &'a [u8],
    id: TensorId,
) -> TensorView<'a> {
    let info = &model.graph().tensors[id];
    match plan.slots[id] {
        Slot::Const(root) => {
            let c = model
                .constant(root)
                .expect("const slot points at a constant");
            TensorView {
                dtype: info.dtype,
                shape: &info.shape,
                data: c.data,
            }
        }
        Slot::Arena { offset, len } => TensorView {
            dtype: info.dtype,
            shape: &info.shape,
            data: &arena[offset..offset + len],
        },
    }
}

fn execute(
    model: &Model,
    plan: &MemoryPlan,
    steps: &[Step],
    arena: &mut AlignedBuf,
    ctx: &Ctx,
    mut profile: Option<&mut [NodeTime]>,
) -> Result<()> {
    let graph = model.graph();
    let base = arena.as_mut_slice().as_mut_ptr();
    let arena_len = arena.len();
    for (k, step) in steps.iter().enumerate() {
        let mut ins: SmallVec<[TensorView; 8]> = SmallVec::new();
        for &t in &step.inputs {
            let info = &graph.tensors[t];
            let data: &[u8] = match plan.slots[t] {
                Slot::Const(root) => {
                    model
                        .constant(root)
                        .expect("const slot points at a constant")
                        .data
                }
                Slot::Arena { offset, len } => {
                    debug_assert!(offset + len <= arena_len);
                    // SAFETY: the plan keeps [offset, offset+len) inside the arena, and no
                    // output of this node overlaps it (lifetimes overlap at this node, so the
                    // planner gave them disjoint ranges). Reads only.
                    unsafe { std::slice::from_raw_parts(base.add(offset), len) }
                }
            };
            ins.push(TensorView {
                dtype: info.dtype,
                shape: &info.shape,
                data,
            });
        }
        let mut outs: SmallVec<[TensorViewMut; 4]> = SmallVec::new();
        for &t in &step.outputs {
            let info = &graph.tensors[t];
            let data: &mut [u8] = match plan.slots[t] {
                Slot::Arena { offset, len } => {
                    debug_assert!(offset + len <= arena_len);
                    // SAFETY: in bounds (as above); outputs of one node are distinct live
                    // tensors, so their ranges are disjoint from each other and from the inputs.
                    // Views (aliasing outputs) have no-op kernels that never write.
                    unsafe { std::slice::from_raw_parts_mut(base.add(offset), len) }
                }
                Slot::Const(_) => &mut [],
            };
            outs.push(TensorViewMut {
                dtype: info.dtype,
                shape: &info.shape,
                data,
            });
        }
        // SAFETY: the scratch region follows every tensor in the arena and nothing else uses it.
        let scratch = unsafe {
            std::slice::from_raw_parts_mut(base.add(plan.scratch_offset), plan.scratch_bytes)
        };
        let t0 = profile.is_some().then(std::time::Instant::now);
        let result = step.kernel.run(&ins, &mut outs, scratch, ctx);
        if let (Some(p), Some(t0)) = (profile.as_deref_mut(), t0) {
            p[k].nanos += t0.elapsed().as_nanos() as u64;
            p[k].calls += 1;
        }
        result.map_err(|e| {
            let node = &graph.nodes[k];
            Error::Node {
                index: k,
                name: node.name.clone(),
                op: node.op.name().into(),
                msg: e.to_string(),
            }
        })?;
    }
    Ok(())
}

//! Executes a planned graph: inputs written into the arena, one kernel per node, outputs read
//! from the arena. Nothing is allocated per inference.
//!
//! Where the graph keeps the items of its batch apart and the threads divide the batch
//! ([`super::batch`]), each thread runs the whole graph on its own part, in its own arena, with
//! no fork inside; the parts' outputs are gathered into whole tensors after the run.

use std::sync::Arc;

use smallvec::SmallVec;

use super::ops::{self, BuildCtx, CpuKernel, Ctx};
use super::plan::{self, MemoryPlan, Slot};
use crate::ir::{Fact, Graph, TensorId};
use crate::tensor::{AlignedBuf, TensorView, TensorViewMut};
use crate::{Error, Model, Result, Tensor};

/// Options for a CPU session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Worker threads (1 = run on the caller's thread only). Default: available cores, at most 8.
    /// More than [`super::max_threads`] is refused by [`Session::new`].
    pub threads: usize,
    /// With several threads, cut the batch between them where the graph allows it (each
    /// thread running the whole graph on its part) rather than every layer. Default: true.
    pub batch_split: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        let cores = super::cores();
        SessionOptions {
            threads: cores.min(8),
            batch_split: true,
        }
    }
}

impl SessionOptions {
    /// The defaults with `threads` threads.
    pub fn with_threads(threads: usize) -> SessionOptions {
        SessionOptions {
            threads,
            ..SessionOptions::default()
        }
    }
}

struct Step {
    kernel: Box<dyn CpuKernel>,
    inputs: Vec<TensorId>,
    outputs: Vec<TensorId>,
}

/// `len` zeroed bytes of `what`, or an error saying the machine could not give them (a model
/// planned for more memory than there is must not abort the process).
pub(crate) fn alloc(len: usize, what: &str) -> Result<AlignedBuf> {
    AlignedBuf::try_zeroed(len).ok_or_else(|| {
        Error::invalid(format!(
            "the model needs {len} bytes of {what}, more than this machine could allocate"
        ))
    })
}

/// A model ready to run on the CPU: kernels built, memory planned, arena allocated.
pub struct Session {
    model: Arc<Model>,
    /// The graph of one part where the batch is cut between the threads; else the model's.
    part: Option<Box<Graph>>,
    plan: MemoryPlan,
    steps: Vec<Step>,
    /// One arena per part of the batch (one where it is not cut).
    arenas: Vec<AlignedBuf>,
    /// Where the batch is cut: the whole outputs, gathered from the parts after each run.
    outputs: Vec<AlignedBuf>,
    /// Whether a run has been made (after the first, a cut batch reserves its GEMM buffers).
    warm: bool,
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
        let part = (threads > 1 && opts.batch_split)
            .then(|| super::batch::split(model.graph(), threads).ok())
            .flatten()
            .map(Box::new);
        let parts = if part.is_some() { threads } else { 1 };
        let graph = part.as_deref().unwrap_or(model.graph());
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
        let arenas = (0..parts)
            .map(|_| alloc(plan.arena_bytes(), "working memory"))
            .collect::<Result<_>>()?;
        let whole = model.graph();
        let outputs = if parts > 1 {
            let bytes = |&o: &TensorId| alloc(whole.tensors[o].byte_len(), "output");
            whole.outputs.iter().map(bytes).collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        let pool = if threads > 1 {
            // A cut batch runs its first part on the caller's thread: the pool needs one less.
            let n = if parts > 1 { threads - 1 } else { threads };
            let w = super::worker::Worker::new(n)
                .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?;
            Some(w)
        } else {
            None
        };
        Ok(Session {
            model,
            part,
            plan,
            steps,
            arenas,
            outputs,
            warm: false,
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
    /// The memory plan of one part's arena (see [`Session::parts`]).
    pub fn plan(&self) -> &MemoryPlan {
        &self.plan
    }
    /// Bytes of every arena together.
    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_bytes() * self.arenas.len()
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// How many parts the batch is cut into, one per thread (1: the layers are split instead).
    pub fn parts(&self) -> usize {
        self.arenas.len()
    }
    /// The graph the kernels run: one part's where the batch is cut, else the model's.
    pub fn graph(&self) -> &Graph {
        self.part.as_deref().unwrap_or(self.model.graph())
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
        graph.tensors[id].check_value(&value)?;
        if let Slot::Arena { offset, len } = self.plan.slots[id] {
            // Each part takes its run of the batch (the whole tensor where it is not cut).
            for (arena, run) in self
                .arenas
                .iter_mut()
                .zip(value.data.chunks_exact(len.max(1)))
            {
                arena.as_mut_slice()[offset..offset + len].copy_from_slice(run);
            }
        }
        Ok(())
    }

    /// Output `index` of the last run.
    pub fn output(&self, index: usize) -> TensorView<'_> {
        if let Some(buf) = self.outputs.get(index) {
            let info = &self.model.graph().tensors[self.model.graph().outputs[index]];
            return TensorView {
                dtype: info.dtype,
                shape: &info.shape,
                data: buf.as_slice(),
            };
        }
        let graph = self.graph();
        let id = graph.outputs[index];
        tensor_view(
            &self.model,
            graph,
            &self.plan,
            self.arenas[0].as_slice(),
            id,
        )
    }

    /// Runs the graph on the inputs set. Allocation-free after the first call.
    pub fn run(&mut self) -> Result<()> {
        let Session {
            model,
            part,
            plan,
            steps,
            arenas,
            outputs,
            warm,
            pool,
            profile,
            threads,
        } = self;
        let graph = part.as_deref().unwrap_or(model.graph());
        // Each part runs on one thread; an uncut batch has them all.
        let ctx = Ctx {
            threads: if arenas.len() > 1 { 1 } else { *threads },
        };
        let run = Run {
            graph,
            model,
            plan,
            steps,
            ctx: &ctx,
        };
        let mut profile = profile.as_deref_mut();
        let stopped = || Error::invalid("the CPU worker thread stopped after a kernel panicked");
        match pool {
            // A cut batch: the first part on this thread (as onnxruntime's caller works beside
            // its pool), the others on the pool; nobody sleeps, so nobody waits to be woken.
            // Seed CNN (batch 16, 2 threads): 0.313–0.337 → 0.304–0.306 ms.
            Some(w) if arenas.len() > 1 => {
                let (first, rest) = arenas.split_first_mut().expect("a cut has parts");
                let (mut theirs, mut mine) = (Ok(()), Ok(()));
                let mut job = || theirs = run.parts(rest, None);
                // A kernel that panics here gives an error, as one on the pool does.
                let panicked = || Error::invalid("a kernel panicked on the calling thread");
                let own = std::panic::AssertUnwindSafe(|| run.execute(first, profile));
                let own =
                    || mine = std::panic::catch_unwind(own).unwrap_or_else(|_| Err(panicked()));
                if !w.run_beside(&mut job, own) {
                    return Err(stopped());
                }
                mine?;
                theirs?;
            }
            Some(w) => {
                let mut result = Ok(());
                let mut job = || result = run.parts(arenas, profile.as_deref_mut());
                if !w.run(&mut job) {
                    return Err(stopped());
                }
                result?;
            }
            None => run.parts(arenas, profile)?,
        }
        if !*warm && arenas.len() > 1 {
            // The parts' products meet in a different order each run, each taking a packing
            // buffer from the GEMM's shared pool: one big enough for each part, so none grows
            // one later (an allocation mid-inference).
            edgefuse_kernels::gemm::reserve_workspaces(arenas.len());
        }
        *warm = true;
        // Where the batch is cut, each part's run of every output goes into the whole tensor.
        for (out, &id) in outputs.iter_mut().zip(&graph.outputs) {
            if let Slot::Arena { offset, len } = plan.slots[id] {
                let runs = out.as_mut_slice().chunks_exact_mut(len.max(1));
                for (run, arena) in runs.zip(arenas.iter()) {
                    run.copy_from_slice(&arena.as_slice()[offset..offset + len]);
                }
            }
        }
        Ok(())
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
    graph: &'a Graph,
    plan: &MemoryPlan,
    arena: &'a [u8],
    id: TensorId,
) -> TensorView<'a> {
    let info = &graph.tensors[id];
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

/// What every part of a run shares: the graph, its kernels and its plan.
struct Run<'a> {
    graph: &'a Graph,
    model: &'a Model,
    plan: &'a MemoryPlan,
    steps: &'a [Step],
    ctx: &'a Ctx,
}

impl Run<'_> {
    /// Runs the graph once in each arena, the arenas side by side on the pool's threads
    /// (`rayon::join`, which allocates nothing). Only the first part is profiled.
    fn parts(&self, arenas: &mut [AlignedBuf], profile: Option<&mut [NodeTime]>) -> Result<()> {
        match arenas {
            [arena] => self.execute(arena, profile),
            _ => {
                let (a, b) = arenas.split_at_mut(arenas.len() / 2);
                let (ra, rb) = rayon::join(|| self.parts(a, profile), || self.parts(b, None));
                ra.and(rb)
            }
        }
    }

    fn execute(&self, arena: &mut AlignedBuf, profile: Option<&mut [NodeTime]>) -> Result<()> {
        let Run {
            graph,
            model,
            plan,
            steps,
            ctx,
        } = *self;
        execute(graph, model, plan, steps, arena, ctx, profile)
    }
}

fn execute(
    graph: &Graph,
    model: &Model,
    plan: &MemoryPlan,
    steps: &[Step],
    arena: &mut AlignedBuf,
    ctx: &Ctx,
    mut profile: Option<&mut [NodeTime]>,
) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ops::{Binary, BinaryOp};
    use crate::ir::Op;
    use crate::testing::{info, model, node};

    /// A plan asking for more memory than the machine can address — 300 inputs of 1 TiB, all
    /// live at once (each file's tensors are checked only one by one) — is an error from
    /// `Session::new` naming the need, not an aborted process.
    #[test]
    fn a_plan_beyond_memory_is_an_error() {
        let n = 300;
        let big = [1usize << 38];
        let mut tensors: Vec<_> = (0..n).map(|i| info(&format!("x{i}"), &big)).collect();
        let mut nodes = Vec::new();
        let mut sum = 0;
        for i in 1..n {
            tensors.push(info(&format!("s{i}"), &big));
            let out = tensors.len() - 1;
            let add = Op::Binary(Binary { op: BinaryOp::Add });
            nodes.push(node(&format!("add{i}"), add, &[sum, i], &[out]));
            sum = out;
        }
        let consts = vec![None; tensors.len()];
        let graph = Graph {
            tensors,
            nodes,
            inputs: (0..n).collect(),
            outputs: vec![sum],
        };
        let e = Session::new(model(graph, &consts), SessionOptions::with_threads(1))
            .err()
            .expect("an arena of 300 TiB was allocated");
        assert!(
            e.to_string()
                .contains("more than this machine could allocate"),
            "{e}"
        );
    }
}

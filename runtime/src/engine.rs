//! Backend selection (`auto`, `cpu`, `cuda`) and [`Engine`], one session type over either
//! backend. The CLI's `run`, `bench` and `classify` open their sessions here, so the rule for
//! `auto` (CUDA when this build has it and a GPU is usable, else the CPU) lives in one place.

use std::sync::Arc;

use crate::cpu::{self, SessionOptions};
use crate::tensor::TensorView;
use crate::{Error, Model, Result, Tensor};

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CUDA when this build has it and a GPU is usable, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

/// Options for opening an [`Engine`].
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub cpu: SessionOptions,
    /// CUDA: NVRTC target arch (a board profile's `gpu.arch`); default the device's.
    pub arch: Option<String>,
    /// CUDA: replay node by node instead of CUDA graphs.
    pub no_graphs: bool,
    /// CUDA: compute in fp16 (true) or fp32 (false); default fp16 exactly when the model's
    /// weights are stored as f16 (`compile --precision fp16`).
    pub fp16: Option<bool>,
    /// CUDA: every node in its own kernel (`cuda::fuse` off).
    pub no_fuse: bool,
}

/// A session on the backend that was picked.
pub enum Engine {
    Cpu(cpu::Session),
    #[cfg(feature = "cuda")]
    Cuda(Box<crate::cuda::CudaSession>),
}

/// Whether a CUDA backend is usable here: Ok(one line naming the GPU) or Err(why not).
pub fn cuda_status() -> std::result::Result<String, String> {
    #[cfg(feature = "cuda")]
    {
        let info = crate::cuda::probe(0).map_err(|e| e.to_string())?;
        if !crate::cuda::nvrtc::present() {
            return Err("CUDA: NVRTC (libnvrtc.so) not found".into());
        }
        Ok(format!("{} ({})", info.name, info.arch))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err("this build of edgefuse has no CUDA backend (build with --features cuda)".into())
    }
}

impl Engine {
    /// Opens `model` on `backend`. Returns the engine and, for `auto`, one line saying which
    /// backend was picked and why (for stderr).
    pub fn open(
        model: Arc<Model>,
        backend: Backend,
        opts: &EngineOptions,
    ) -> Result<(Engine, Option<String>)> {
        match backend {
            Backend::Cpu => Ok((Engine::Cpu(cpu::Session::new(model, opts.cpu)?), None)),
            Backend::Cuda => match cuda_status() {
                Ok(_) => Ok((Self::open_cuda(model, opts)?, None)),
                Err(why) => Err(Error::Unsupported(format!("--backend cuda: {why}"))),
            },
            Backend::Auto => match cuda_status() {
                Ok(gpu) => match Self::open_cuda(model.clone(), opts) {
                    Ok(e) => Ok((e, Some(format!("backend: cuda on {gpu}")))),
                    Err(err) => {
                        let cpu = Engine::Cpu(cpu::Session::new(model, opts.cpu)?);
                        Ok((cpu, Some(format!("backend: cpu (CUDA failed: {err})"))))
                    }
                },
                Err(why) => {
                    let cpu = Engine::Cpu(cpu::Session::new(model, opts.cpu)?);
                    Ok((cpu, Some(format!("backend: cpu ({why})"))))
                }
            },
        }
    }

    #[cfg(feature = "cuda")]
    fn open_cuda(model: Arc<Model>, opts: &EngineOptions) -> Result<Engine> {
        let o = crate::cuda::CudaOptions {
            arch: opts.arch.clone(),
            graphs: !opts.no_graphs,
            fuse: !opts.no_fuse,
            precision: opts.fp16.map(|h| {
                if h {
                    crate::cuda::Precision::F16
                } else {
                    crate::cuda::Precision::F32
                }
            }),
            ..Default::default()
        };
        Ok(Engine::Cuda(Box::new(crate::cuda::CudaSession::new(
            model, &o,
        )?)))
    }

    #[cfg(not(feature = "cuda"))]
    fn open_cuda(_model: Arc<Model>, _opts: &EngineOptions) -> Result<Engine> {
        Err(Error::Unsupported("this build has no CUDA backend".into()))
    }

    /// `cpu` or `cuda`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Engine::Cpu(_) => "cpu",
            #[cfg(feature = "cuda")]
            Engine::Cuda(_) => "cuda",
        }
    }

    /// One line describing where it runs (threads, or GPU, arch, precision and graph launches).
    pub fn describe(&self) -> String {
        match self {
            Engine::Cpu(s) if s.parts() > 1 => format!(
                "cpu, {} thread(s), each running the graph on 1/{} of the batch",
                s.threads(),
                s.parts()
            ),
            Engine::Cpu(s) => format!("cpu, {} thread(s)", s.threads()),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => {
                let d = s.device();
                let on_cpu = s.placements().iter().filter(|p| !p.is_gpu()).count();
                format!(
                    "cuda on {} ({}), {}, {} CUDA graph launch(es) per run, {} node(s) on the CPU{}",
                    d.name,
                    d.arch,
                    s.precision().name(),
                    s.graph_launches(),
                    on_cpu,
                    if s.mapped_io() { ", mapped I/O" } else { "" }
                )
            }
        }
    }

    pub fn model(&self) -> &Arc<Model> {
        match self {
            Engine::Cpu(s) => s.model(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.model(),
        }
    }
    /// Bytes of the activation arena (host or device).
    pub fn arena_bytes(&self) -> usize {
        match self {
            Engine::Cpu(s) => s.arena_bytes(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.plan().arena_bytes(),
        }
    }
    pub fn threads(&self) -> usize {
        match self {
            Engine::Cpu(s) => s.threads(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(_) => 1,
        }
    }
    pub fn set_input(&mut self, index: usize, value: TensorView) -> Result<()> {
        match self {
            Engine::Cpu(s) => s.set_input(index, value),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.set_input(index, value),
        }
    }
    /// Per-node timing on or off (CUDA: node by node with events, no graph replay).
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        match self {
            Engine::Cpu(s) => {
                s.set_profiling(on);
                Ok(())
            }
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.set_profiling(on),
        }
    }
    /// Per-node times since profiling was turned on, indexed like [`Self::profile_graph`]'s nodes.
    pub fn profile(&self) -> Option<&[cpu::NodeTime]> {
        match self {
            Engine::Cpu(s) => s.profile(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.profile(),
        }
    }
    /// The graph that runs: the model's on the CPU, the lowered one (fp16 casts) on CUDA.
    pub fn profile_graph(&self) -> &crate::ir::Graph {
        match self {
            Engine::Cpu(s) => s.model().graph(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.device_graph(),
        }
    }
    /// What node `k` of [`Self::profile_graph`] runs: its op, with what a CUDA kernel runs
    /// besides (`Conv+MaxPool`, `Gemm+Softmax`, `Conv+in-act` for a writer's epilogue).
    pub fn profile_label(&self, k: usize) -> String {
        match self {
            Engine::Cpu(s) => s.model().graph().nodes[k].op.name().to_string(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.node_label(k),
        }
    }
    /// The steps of the load and their times in ms, where the backend records them (CUDA).
    pub fn load_phases(&self) -> Option<&[(String, f64)]> {
        match self {
            Engine::Cpu(_) => None,
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => Some(s.load_phases()),
        }
    }
    pub fn run(&mut self) -> Result<()> {
        match self {
            Engine::Cpu(s) => s.run(),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.run(),
        }
    }
    pub fn output(&self, index: usize) -> TensorView<'_> {
        match self {
            Engine::Cpu(s) => s.output(index),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.output(index),
        }
    }
    pub fn run_tensors(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        match self {
            Engine::Cpu(s) => s.run_tensors(inputs),
            #[cfg(feature = "cuda")]
            Engine::Cuda(s) => s.run_tensors(inputs),
        }
    }
}

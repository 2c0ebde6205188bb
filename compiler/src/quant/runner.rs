//! Runs a module under compilation on the CPU runtime, with chosen intermediate tensors exposed.
//!
//! The module is written to `.efm` bytes in memory with the probed tensors appended to the graph
//! outputs (the plan then keeps them alive to the end of a run), loaded and planned like any
//! model; `Session::run` stays allocation-free. Tensors that are graph inputs (or views of one)
//! are read from the sample itself.

use anyhow::{Context, Result};
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::format::Meta;
use edgefuse_runtime::tensor::TensorView;
use edgefuse_runtime::{DType, Model, Tensor};

use crate::Module;

enum Probe {
    Input(usize),
    Output(usize),
}

pub struct Runner {
    session: Session,
    probes: Vec<Probe>,
    outputs: usize,
    inputs: Vec<Tensor>,
}

impl Runner {
    /// Plans `m` with the f32 tensors named in `probe` exposed (in that order).
    pub fn new(m: &Module, probe: &[String]) -> Result<Runner> {
        let mut graph = m.graph.clone();
        let outputs = graph.outputs.len();
        let by_name = |name: &str| graph.tensors.iter().position(|t| t.name == name);
        // Root of each tensor through views, to spot views of graph inputs (read from the
        // sample itself; the model's own outputs that view an input get a copy below).
        let root = graph.storage_roots();
        let mut probes = Vec::with_capacity(probe.len());
        for name in probe {
            let id = by_name(name).with_context(|| format!("no tensor named \"{name}\""))?;
            anyhow::ensure!(
                graph.tensors[id].dtype == DType::F32,
                "tensor \"{name}\" is not f32"
            );
            if let Some(k) = graph.inputs.iter().position(|&i| i == root[id]) {
                probes.push(Probe::Input(k));
            } else if let Some(k) = graph.outputs.iter().position(|&o| o == id) {
                probes.push(Probe::Output(k));
            } else {
                graph.outputs.push(id);
                probes.push(Probe::Output(graph.outputs.len() - 1));
            }
        }
        let mut probed = Module {
            graph,
            consts: m.consts.clone(),
        };
        probed.copy_outputs_aliasing_inputs();
        let bytes = crate::compile::write_module(&probed, Meta::default())?;
        let model = Model::from_bytes(&bytes).context("loading the model for calibration")?;
        let session = Session::new(model, SessionOptions::default())?;
        Ok(Runner {
            session,
            probes,
            outputs,
            inputs: Vec::new(),
        })
    }

    /// Runs one sample.
    pub fn run(&mut self, sample: &[Tensor]) -> Result<()> {
        for (k, t) in sample.iter().enumerate() {
            self.session.set_input(k, t.view())?;
        }
        self.session.run()?;
        if self.probes.iter().any(|p| matches!(p, Probe::Input(_))) {
            self.inputs.clear();
            self.inputs.extend(sample.iter().cloned());
        }
        Ok(())
    }

    /// Graph output `k` of the last run.
    pub fn output(&self, k: usize) -> TensorView<'_> {
        debug_assert!(k < self.outputs);
        self.session.output(k)
    }

    /// The `j`-th probed tensor of the last run.
    pub fn probe(&self, j: usize) -> &[f32] {
        match self.probes[j] {
            Probe::Input(k) => self.inputs[k].as_slice::<f32>().unwrap_or(&[]),
            Probe::Output(k) => self.session.output(k).typed::<f32>(),
        }
    }
}

//! What an importer sees of one ONNX node: attributes, input facts and constant values, and the
//! `emit` helper that adds IR ops (folding those whose inputs are all constants).

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Result};
use edgefuse_runtime::ir::{Fact, Node, Op, TensorId};
use edgefuse_runtime::{Error as RtError, Tensor};
use tract_onnx::pb::NodeProto;

use super::attr;
use super::tensor::check_size;
use crate::Module;

/// Import state shared by all nodes: the module being built and the ONNX value → tensor map.
#[derive(Default)]
pub struct Builder {
    pub module: Module,
    pub values: HashMap<String, TensorId>,
    /// For tensors computed at run time only because folding failed: why it failed.
    pub unfolded: HashMap<TensorId, String>,
    /// Graph inputs (never renamed, never folded).
    pub graph_inputs: HashSet<TensorId>,
}

/// The context handed to an importer for one node.
pub struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    /// Position of the node in the ONNX graph.
    pub index: usize,
    /// Opset version of the default domain.
    pub opset: i64,
    b: &'a mut Builder,
    inputs: Vec<Option<TensorId>>,
    created: HashSet<TensorId>,
    counter: usize,
    bound: Vec<Option<TensorId>>,
}

impl<'a> NodeCtx<'a> {
    pub(crate) fn new(
        node: &'a NodeProto,
        index: usize,
        opset: i64,
        b: &'a mut Builder,
        inputs: Vec<Option<TensorId>>,
    ) -> Self {
        let n_out = node.output.len();
        NodeCtx {
            node,
            index,
            opset,
            b,
            inputs,
            created: HashSet::new(),
            counter: 0,
            bound: vec![None; n_out],
        }
    }

    pub fn op_type(&self) -> &str {
        &self.node.op_type
    }

    /// The IR node name: the ONNX node name, or its first output's name when it has none.
    pub fn name(&self) -> String {
        if !self.node.name.is_empty() {
            self.node.name.clone()
        } else {
            self.node.output.first().cloned().unwrap_or_default()
        }
    }

    // ---- attributes ----

    pub fn has_attr(&self, name: &str) -> bool {
        attr::find(self.node, name).is_some()
    }
    pub fn attr_int(&self, name: &str) -> Result<Option<i64>> {
        attr::get_int(self.node, name)
    }
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.attr_int(name)?.unwrap_or(default))
    }
    pub fn attr_float(&self, name: &str) -> Result<Option<f32>> {
        attr::get_float(self.node, name)
    }
    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.attr_float(name)?.unwrap_or(default))
    }
    pub fn attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        attr::get_ints(self.node, name)
    }
    pub fn attr_floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        attr::get_floats(self.node, name)
    }
    pub fn attr_string(&self, name: &str) -> Result<Option<String>> {
        attr::get_string(self.node, name)
    }
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        Ok(self
            .attr_string(name)?
            .unwrap_or_else(|| default.to_string()))
    }
    pub fn attr_strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        attr::get_strings(self.node, name)
    }
    pub fn attr_tensor(&self, name: &str) -> Result<Option<Tensor>> {
        attr::get_tensor(self.node, name)
    }
    /// A non-negative int attribute as usize.
    pub fn usize_attr(&self, name: &str, default: usize) -> Result<usize> {
        match self.attr_int(name)? {
            None => Ok(default),
            Some(v) if v >= 0 => Ok(v as usize),
            Some(v) => bail!("attribute \"{name}\" must be non-negative, got {v}"),
        }
    }
    /// A list of non-negative ints as usize, or `default` when absent.
    pub fn usizes_attr(&self, name: &str, default: Vec<usize>) -> Result<Vec<usize>> {
        match self.attr_ints(name)? {
            None => Ok(default),
            Some(v) => to_usizes(&v, &format!("attribute \"{name}\"")),
        }
    }

    // ---- inputs ----

    /// Number of inputs listed by the node (absent optional ones included).
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// Checks the number of listed inputs.
    pub fn expect_inputs(&self, min: usize, max: usize) -> Result<()> {
        let n = self.inputs.len();
        // Trailing absent inputs do not count against `min`.
        let present = self
            .inputs
            .iter()
            .rposition(|i| i.is_some())
            .map_or(0, |p| p + 1);
        if present < min || n > max {
            bail!("expects {min} to {max} inputs, got {n}");
        }
        Ok(())
    }
    /// Input `i` if it is present ("" and missing trailing inputs are absent).
    pub fn opt_input(&self, i: usize) -> Option<TensorId> {
        self.inputs.get(i).copied().flatten()
    }
    /// Input `i`, which must be present.
    pub fn input(&self, i: usize) -> Result<TensorId> {
        self.opt_input(i)
            .ok_or_else(|| anyhow!("required input {i} is missing"))
    }
    pub fn fact(&self, id: TensorId) -> Fact {
        self.b.module.graph.tensors[id].fact()
    }
    pub fn input_fact(&self, i: usize) -> Result<Fact> {
        Ok(self.fact(self.input(i)?))
    }
    pub fn const_value(&self, id: TensorId) -> Option<&Tensor> {
        self.b.module.consts.get(id).and_then(|c| c.as_ref())
    }
    pub fn is_const(&self, id: TensorId) -> bool {
        self.const_value(id).is_some()
    }
    /// The constant value of input `i`, `None` when absent or computed at run time.
    pub fn input_const(&self, i: usize) -> Option<&Tensor> {
        self.opt_input(i).and_then(|id| self.const_value(id))
    }
    /// The constant value of input `i`, which must be present and constant (`what` names its role).
    pub fn require_const(&self, i: usize, what: &str) -> Result<&Tensor> {
        let id = self.input(i)?;
        if let Some(t) = self.const_value(id) {
            return Ok(t);
        }
        let name = self.node.input.get(i).map(String::as_str).unwrap_or("");
        let mut msg = format!(
            "input {i} \"{name}\" ({what}) must be a constant once input shapes are fixed, \
             but it is computed at run time"
        );
        if let Some(why) = self.b.unfolded.get(&id) {
            msg.push_str(&format!(" (folding stopped at: {why})"));
        }
        Err(anyhow!(msg))
    }
    /// Integer contents of a constant input.
    pub fn const_i64s(&self, i: usize, what: &str) -> Result<Vec<i64>> {
        let t = self.require_const(i, what)?;
        if !matches!(
            t.dtype,
            edgefuse_runtime::DType::I64 | edgefuse_runtime::DType::I32
        ) {
            bail!(
                "input {i} ({what}) must be an integer tensor, got {}",
                t.dtype
            );
        }
        Ok(t.to_i64_vec()?)
    }
    pub fn const_f32s(&self, i: usize, what: &str) -> Result<Vec<f32>> {
        Ok(self.require_const(i, what)?.to_f32_vec()?)
    }

    // ---- outputs ----

    /// Number of outputs the node declares (absent optional ones, named "", included).
    pub fn n_outputs(&self) -> usize {
        self.node.output.len()
    }
    /// Whether output `k` is requested (listed with a non-empty name).
    pub fn wants_output(&self, k: usize) -> bool {
        self.node.output.get(k).is_some_and(|s| !s.is_empty())
    }

    /// Adds `op` applied to `inputs` and returns its output tensors. When every input is a
    /// constant, evaluates it and returns constants instead; an op the CPU backend cannot
    /// evaluate yet is kept as a node.
    pub fn emit(&mut self, op: Op, inputs: &[TensorId]) -> Result<Vec<TensorId>> {
        self.emit_with(op, inputs, true)
    }

    /// [`NodeCtx::emit`] without folding: the node is kept even when every input is constant
    /// (DequantizeLinear of quantized weights, which the int8 rewrite rules consume).
    pub fn emit_unfolded(&mut self, op: Op, inputs: &[TensorId]) -> Result<Vec<TensorId>> {
        self.emit_with(op, inputs, false)
    }

    fn emit_with(&mut self, op: Op, inputs: &[TensorId], fold: bool) -> Result<Vec<TensorId>> {
        let facts: Vec<Fact> = inputs.iter().map(|&i| self.fact(i)).collect();
        let out_facts = op.infer(&facts).map_err(|e| anyhow!("{e}"))?;
        for f in &out_facts {
            check_size(&f.shape, f.dtype, &format!("the output of {}", op.name()))?;
        }
        let base = self
            .node
            .output
            .first()
            .cloned()
            .unwrap_or_else(|| self.name());
        let all_const = fold && !inputs.is_empty() && inputs.iter().all(|&i| self.is_const(i));
        let mut why_not = inputs.iter().find_map(|i| self.b.unfolded.get(i).cloned());
        if all_const {
            let vals: Vec<&Tensor> = inputs
                .iter()
                .map(|&i| self.const_value(i).expect("checked constant"))
                .collect();
            match eval(&op, &vals) {
                Ok(outs) => {
                    if outs.len() != out_facts.len() {
                        bail!("folding {} gave {} outputs", op.name(), outs.len());
                    }
                    let mut ids = Vec::with_capacity(outs.len());
                    for t in outs {
                        let name = self.temp_name(&base, op.name());
                        let id = self.b.module.add_const(name, t);
                        self.created.insert(id);
                        ids.push(id);
                    }
                    return Ok(ids);
                }
                Err(e @ RtError::Unsupported(_)) => why_not = Some(format!("{} ({e})", op.name())),
                Err(e) => bail!("evaluating {} on constants: {e}", op.name()),
            }
        }
        let mut ids = Vec::with_capacity(out_facts.len());
        for f in out_facts {
            let name = self.temp_name(&base, op.name());
            let id = self.b.module.add_value(name, f);
            self.created.insert(id);
            if let Some(w) = &why_not {
                self.b.unfolded.insert(id, w.clone());
            }
            ids.push(id);
        }
        self.b.module.graph.nodes.push(Node {
            name: self.name(),
            op,
            inputs: inputs.to_vec(),
            outputs: ids.clone(),
        });
        Ok(ids)
    }

    /// Emits an op with one output.
    pub fn emit1(&mut self, op: Op, inputs: &[TensorId]) -> Result<TensorId> {
        let out = self.emit(op, inputs)?;
        match out.as_slice() {
            [one] => Ok(*one),
            _ => bail!("internal: expected one output, got {}", out.len()),
        }
    }

    /// Adds a constant made by the importer.
    pub fn add_const(&mut self, t: Tensor) -> TensorId {
        let base = self.node.output.first().cloned().unwrap_or_default();
        let name = self.temp_name(&base, "const");
        let id = self.b.module.add_const(name, t);
        self.created.insert(id);
        id
    }

    /// Binds the node's ONNX output `k` to tensor `id` (an emitted tensor takes the ONNX name).
    pub fn set_output(&mut self, k: usize, id: TensorId) -> Result<()> {
        let Some(name) = self.node.output.get(k) else {
            bail!("internal: the node has no output {k}");
        };
        if name.is_empty() {
            return Ok(());
        }
        if self.created.remove(&id) {
            self.b.module.graph.tensors[id].name = name.clone();
        }
        self.bound[k] = Some(id);
        Ok(())
    }

    /// Binds outputs 0.. to `ids`, skipping absent ones; extra `ids` are ignored.
    pub fn set_outputs(&mut self, ids: &[TensorId]) -> Result<()> {
        for (k, &id) in ids.iter().enumerate().take(self.n_outputs()) {
            self.set_output(k, id)?;
        }
        Ok(())
    }

    /// Emits `op` and binds all its outputs in order.
    pub fn emit_outputs(&mut self, op: Op, inputs: &[TensorId]) -> Result<()> {
        let ids = self.emit(op, inputs)?;
        self.bind_all(ids)
    }

    /// [`NodeCtx::emit_outputs`] through [`NodeCtx::emit_unfolded`].
    pub fn emit_outputs_unfolded(&mut self, op: Op, inputs: &[TensorId]) -> Result<()> {
        let ids = self.emit_unfolded(op, inputs)?;
        self.bind_all(ids)
    }

    fn bind_all(&mut self, ids: Vec<TensorId>) -> Result<()> {
        if self.n_outputs() > ids.len()
            && (ids.len()..self.n_outputs()).any(|k| self.wants_output(k))
        {
            bail!(
                "requests {} outputs, edgefuse computes {}",
                self.n_outputs(),
                ids.len()
            );
        }
        self.set_outputs(&ids)
    }

    /// After the importer ran: every requested output must be bound. Returns (name, id) pairs.
    pub(crate) fn finish(self) -> Result<Vec<(String, TensorId)>> {
        let mut out = Vec::new();
        for (k, name) in self.node.output.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            match self.bound[k] {
                Some(id) => out.push((name.clone(), id)),
                None => {
                    bail!("output {k} \"{name}\" is not computed by edgefuse's import of this op")
                }
            }
        }
        Ok(out)
    }

    fn temp_name(&mut self, base: &str, what: &str) -> String {
        self.counter += 1;
        format!("{base}/{what}_{}", self.counter)
    }

    // ---- helpers ----

    /// Normalises an axis in `[-rank, rank)`.
    pub fn axis(&self, a: i64, rank: usize) -> Result<usize> {
        norm_axis(a, rank)
    }
}

/// Evaluates `op` on constants with the runtime's own kernels (so folded and executed results agree).
pub fn eval(op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>, RtError> {
    edgefuse_runtime::cpu::ops::eval(op, inputs)
}

/// Normalises an axis in `[-rank, rank)`.
pub fn norm_axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r {
        bail!("axis {a} is out of range for rank {rank}");
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// Converts non-negative ints to usize.
pub fn to_usizes(v: &[i64], what: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| anyhow!("{what} must be non-negative, got {v:?}")))
        .collect()
}

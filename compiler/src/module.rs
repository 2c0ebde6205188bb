//! The compiler's working form of a model: the IR graph plus the values of its constants.
//!
//! Constants live here as owned tensors while passes run; the `.efm` writer lays them out in the
//! weights section and fills in each constant's `TensorInfo::weight`.

use edgefuse_runtime::ir::ops::{Unary, UnaryOp};
use edgefuse_runtime::ir::{Graph, Node, Op, TensorId, TensorInfo};
use edgefuse_runtime::Tensor;

/// A graph under compilation. `consts[id]` is `Some` exactly for constant tensors.
#[derive(Debug, Clone, Default)]
pub struct Module {
    pub graph: Graph,
    pub consts: Vec<Option<Tensor>>,
}

impl Module {
    /// Adds a tensor without data (an input or an intermediate value) and returns its id.
    pub fn add_value(
        &mut self,
        name: impl Into<String>,
        fact: edgefuse_runtime::ir::Fact,
    ) -> TensorId {
        self.graph.tensors.push(TensorInfo {
            name: name.into(),
            dtype: fact.dtype,
            shape: fact.shape,
            weight: None,
            quant: None,
        });
        self.consts.push(None);
        self.graph.tensors.len() - 1
    }

    /// Adds a constant tensor and returns its id.
    pub fn add_const(&mut self, name: impl Into<String>, t: Tensor) -> TensorId {
        self.graph.tensors.push(TensorInfo {
            name: name.into(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            weight: None,
            quant: None,
        });
        self.consts.push(Some(t));
        self.graph.tensors.len() - 1
    }

    pub fn is_const(&self, id: TensorId) -> bool {
        self.consts.get(id).is_some_and(|c| c.is_some())
    }

    /// Gives each graph output that is a view of a graph input (a Reshape, Flatten or Squeeze
    /// of it, which the runtime plans as an alias of the input's storage) an Identity copy
    /// under its name, keeping its place among the outputs: a runtime refuses an output that
    /// shares a caller's input. Run before a module is written (a calibration's probes are
    /// outputs too).
    pub fn copy_outputs_aliasing_inputs(&mut self) {
        let g = &self.graph;
        let mut root: Vec<TensorId> = (0..g.tensors.len()).collect();
        for node in &g.nodes {
            if node.op.is_view() {
                root[node.outputs[0]] = root[node.inputs[0]];
            }
        }
        let aliased: Vec<usize> = (0..g.outputs.len())
            .filter(|&k| {
                let o = g.outputs[k];
                !g.inputs.contains(&o) && g.inputs.iter().any(|&i| root[i] == root[o])
            })
            .collect();
        for k in aliased {
            let view = self.graph.outputs[k];
            let info = &mut self.graph.tensors[view];
            let name = std::mem::take(&mut info.name);
            info.name = format!("{name}/view");
            let fact = info.fact();
            let quant = info.quant.clone();
            let out = self.add_value(name.clone(), fact);
            self.graph.tensors[out].quant = quant;
            self.graph.nodes.push(Node {
                name,
                op: Op::Unary(Unary {
                    op: UnaryOp::Identity,
                }),
                inputs: vec![view],
                outputs: vec![out],
            });
            self.graph.outputs[k] = out;
        }
    }
}

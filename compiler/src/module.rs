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
        let root = g.storage_roots();
        let aliased: Vec<usize> = (0..g.outputs.len())
            .filter(|&k| {
                let o = g.outputs[k];
                !g.inputs.contains(&o) && g.inputs.iter().any(|&i| root[i] == root[o])
            })
            .collect();
        // An output listed twice gets one copy.
        let mut copies: Vec<(TensorId, TensorId)> = Vec::new();
        for k in aliased {
            let view = self.graph.outputs[k];
            if let Some(&(_, out)) = copies.iter().find(|(v, _)| *v == view) {
                self.graph.outputs[k] = out;
                continue;
            }
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
            copies.push((view, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgefuse_runtime::ir::ops::Reshape;
    use edgefuse_runtime::ir::Fact;
    use edgefuse_runtime::DType;

    /// x → Reshape → y, with y listed as an output twice and z = Relu(y) once: y gets one
    /// Identity copy under its name for both places; z, computed, is left alone.
    #[test]
    fn an_output_viewing_an_input_gets_one_copy() {
        let mut m = Module::default();
        let x = m.add_value("x", Fact::new(DType::F32, vec![2, 3]));
        let y = m.add_value("y", Fact::new(DType::F32, vec![6]));
        let z = m.add_value("z", Fact::new(DType::F32, vec![6]));
        m.graph.inputs = vec![x];
        m.graph.nodes = vec![
            Node {
                name: "rs".into(),
                op: Op::Reshape(Reshape { shape: vec![6] }),
                inputs: vec![x],
                outputs: vec![y],
            },
            Node {
                name: "relu".into(),
                op: Op::Unary(Unary { op: UnaryOp::Relu }),
                inputs: vec![y],
                outputs: vec![z],
            },
        ];
        m.graph.outputs = vec![y, z, y];
        m.copy_outputs_aliasing_inputs();
        let g = &m.graph;
        let copy = g.outputs[0];
        assert_eq!(g.outputs, [copy, z, copy]);
        assert_ne!(copy, y);
        assert_eq!(g.tensors[copy].name, "y");
        assert_eq!(g.tensors[y].name, "y/view");
        assert_eq!(g.nodes.len(), 3);
        let last = &g.nodes[2];
        assert!(matches!(
            last.op,
            Op::Unary(Unary {
                op: UnaryOp::Identity
            })
        ));
        assert_eq!(
            (last.inputs.as_slice(), last.outputs.as_slice()),
            ([y].as_slice(), [copy].as_slice())
        );
        assert_eq!(m.consts.len(), g.tensors.len());
        g.validate_with_consts(&|_| false).unwrap();
    }
}

//! The compiler's working form of a model: the IR graph plus the values of its constants.
//!
//! Constants live here as owned tensors while passes run; the `.efm` writer lays them out in the
//! weights section and fills in each constant's `TensorInfo::weight`.

use edgefuse_runtime::ir::{Graph, TensorId, TensorInfo};
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
}

//! The intermediate representation: a static, fully shaped dataflow graph.
//!
//! The compiler builds it (import, fold, fuse, quantize) and writes it into the `.efm` metadata;
//! the runtime reads it back and plans it. Every tensor has a static shape and dtype; every op's
//! attributes are resolved (no shape subgraphs, no constant inputs that change an op's meaning).

pub mod ops;

use serde::{Deserialize, Serialize};

pub use ops::{Fact, Op};

use crate::tensor::DType;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// Where a constant tensor's bytes live in the weights section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightRef {
    /// Byte offset from the start of the weights section; a multiple of 64.
    pub offset: u64,
    /// Byte length; equals `size * product(shape)`, where size is that of `stored` if set,
    /// else of the tensor's dtype.
    pub len: u64,
    /// How the bytes are stored when it differs from the tensor's dtype: only `F16` for an `F32`
    /// tensor (`compile --precision fp16`); `Model::constant` widens such weights to f32 on
    /// first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<DType>,
}

impl WeightRef {
    /// The stored element type of a constant of type `dtype`, checked.
    pub fn stored_dtype(&self, dtype: DType) -> Option<DType> {
        match (self.stored, dtype) {
            (None, d) => Some(d),
            (Some(DType::F16), DType::F32) => Some(DType::F16),
            _ => None,
        }
    }
}

/// Quantization parameters of an int8/uint8 tensor (per tensor or per channel along `axis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    pub axis: Option<usize>,
}

impl QuantParams {
    /// Whether these can quantize a tensor of `dtype` and `shape`: an 8-bit type, scales finite
    /// and positive, zero points in the type's range, one of each per tensor or per channel of
    /// `axis`. What is wrong otherwise.
    fn check(&self, dtype: DType, shape: &[usize]) -> Result<(), String> {
        let range = match dtype {
            DType::U8 => 0..=255,
            DType::I8 => -128..=127,
            _ => {
                return Err(format!(
                    "a {dtype} tensor cannot carry quantization parameters"
                ))
            }
        };
        let per = match self.axis {
            None => 1,
            Some(a) => *shape
                .get(a)
                .ok_or_else(|| format!("quantization axis {a} is past rank {}", shape.len()))?,
        };
        if self.scale.len() != per || self.zero_point.len() != per {
            return Err(format!(
                "{} scales and {} zero points where the tensor needs {per} of each",
                self.scale.len(),
                self.zero_point.len()
            ));
        }
        if let Some(s) = self.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("quantization scale {s} is not a positive number"));
        }
        if let Some(z) = self.zero_point.iter().find(|z| !range.contains(*z)) {
            return Err(format!("zero point {z} is outside {dtype}'s range"));
        }
        Ok(())
    }
}

/// One tensor of the graph: an input, a constant (weights) or an intermediate/output value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Set for constants: where the data is in the weights section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<WeightRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<QuantParams>,
}

impl TensorInfo {
    pub fn fact(&self) -> Fact {
        Fact {
            dtype: self.dtype,
            shape: self.shape.clone(),
        }
    }
    pub fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// Whether `value` can be this tensor (a session's input): its dtype, its shape and as many
    /// bytes as they need; `Error::BadInput` naming what differs otherwise.
    pub fn check_value(&self, value: &crate::tensor::TensorView) -> crate::Result<()> {
        if value.dtype == self.dtype
            && value.shape == &self.shape[..]
            && value.data.len() == self.byte_len()
        {
            return Ok(());
        }
        Err(crate::Error::BadInput {
            name: self.name.clone(),
            msg: format!(
                "expected {} {:?} ({} bytes), got {} {:?} ({} bytes)",
                self.dtype,
                self.shape,
                self.byte_len(),
                value.dtype,
                value.shape,
                value.data.len()
            ),
        })
    }
}

/// One operation. `inputs` lists only the inputs present (optional ONNX inputs that are absent are
/// recorded in the op's attributes, e.g. `Lstm::has_h0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

/// A graph in topological order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

impl Graph {
    /// The tensor whose storage each tensor shares: itself, or for the output of a view
    /// (Reshape) its input's root. Runtimes plan views as aliases of that storage.
    pub fn storage_roots(&self) -> Vec<TensorId> {
        let mut root: Vec<TensorId> = (0..self.tensors.len()).collect();
        for node in &self.nodes {
            if node.op.is_view() {
                root[node.outputs[0]] = root[node.inputs[0]];
            }
        }
        root
    }

    /// Checks the structural invariants a reader relies on: ids in range, topological order, each
    /// tensor produced once, shapes agreeing with each op's inference. Run on every loaded file.
    pub fn validate(&self) -> crate::Result<()> {
        self.validate_with_consts(&|i| self.tensors[i].weight.is_some())
    }

    /// [`Graph::validate`] for a graph whose constants are not laid out yet (the compiler's):
    /// `is_const(id)` says which tensors hold data.
    pub fn validate_with_consts(&self, is_const: &dyn Fn(TensorId) -> bool) -> crate::Result<()> {
        let n = self.tensors.len();
        let mut defined = vec![false; n];
        for &i in &self.inputs {
            if i >= n {
                crate::invalid!("graph input id {i} out of range ({n} tensors)");
            }
            defined[i] = true;
        }
        for (i, t) in self.tensors.iter().enumerate() {
            if is_const(i) {
                defined[i] = true;
            }
            // Bytes with every 0 dimension read as 1 (an upper bound of the real size): a
            // zero-sized tensor must not hide huge dimensions, so that the product of any subset
            // of the dimensions (the outer/inner sizes a kernel takes) fits.
            let bytes = t
                .shape
                .iter()
                .try_fold(t.dtype.size(), |a, &d| a.checked_mul(d.max(1)));
            match bytes {
                Some(b) if b <= (1usize << 40) => {}
                _ => crate::invalid!(
                    "tensor {i} \"{}\" has an impossible shape {:?}",
                    t.name,
                    t.shape
                ),
            }
            if let Some(e) = t
                .quant
                .as_ref()
                .and_then(|q| q.check(t.dtype, &t.shape).err())
            {
                crate::invalid!("tensor {i} \"{}\": {e}", t.name);
            }
            if let Some(w) = t.weight {
                let Some(stored) = w.stored_dtype(t.dtype) else {
                    crate::invalid!(
                        "constant \"{}\" of type {} cannot be stored as {:?}",
                        t.name,
                        t.dtype,
                        w.stored
                    );
                };
                let need = t.shape.iter().product::<usize>() * stored.size();
                if w.len as usize != need {
                    crate::invalid!(
                        "constant \"{}\" claims {} bytes but shape {:?} {} needs {}",
                        t.name,
                        w.len,
                        t.shape,
                        stored,
                        need
                    );
                }
            }
        }
        for (k, node) in self.nodes.iter().enumerate() {
            let ctx = |msg: String| crate::Error::Node {
                index: k,
                name: node.name.clone(),
                op: node.op.name().to_string(),
                msg,
            };
            let mut facts = Vec::with_capacity(node.inputs.len());
            for &i in &node.inputs {
                if i >= n || !defined[i] {
                    return Err(ctx(format!("input tensor {i} is not defined before use")));
                }
                facts.push(self.tensors[i].fact());
            }
            let inferred = node.op.infer(&facts).map_err(|e| ctx(e.to_string()))?;
            if inferred.len() != node.outputs.len() {
                return Err(ctx(format!(
                    "op yields {} outputs, node lists {}",
                    inferred.len(),
                    node.outputs.len()
                )));
            }
            for (&o, f) in node.outputs.iter().zip(&inferred) {
                if o >= n || defined[o] {
                    return Err(ctx(format!(
                        "output tensor {o} is out of range or defined twice"
                    )));
                }
                if self.tensors[o].dtype != f.dtype || self.tensors[o].shape != f.shape {
                    return Err(ctx(format!(
                        "output \"{}\" recorded as {:?} {} but the op gives {:?} {}",
                        self.tensors[o].name,
                        self.tensors[o].shape,
                        self.tensors[o].dtype,
                        f.shape,
                        f.dtype
                    )));
                }
                defined[o] = true;
            }
        }
        for &o in &self.outputs {
            if o >= n || !defined[o] {
                crate::invalid!("graph output {o} is never computed");
            }
        }
        Ok(())
    }
}

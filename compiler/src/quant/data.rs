//! Calibration and validation data, as the compiler takes it: per input, one tensor whose
//! elements are split into model-sized samples (the CLI reads IDX, `.npy` and image folders).

use anyhow::{bail, Result};
use edgefuse_runtime::ir::Graph;
use edgefuse_runtime::{DType, Tensor};

/// Samples for one graph input: `data`'s elements in order, one model input's worth per sample
/// (so `[N, 28, 28]` feeds a `[1, 1, 28, 28]` input N times).
#[derive(Debug, Clone)]
pub struct Batch {
    /// The graph input it feeds; None for a one-input model.
    pub input: Option<String>,
    pub data: Tensor,
}

/// Inputs with optional labels (class indices, one per row of output 0).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub inputs: Vec<Batch>,
    pub labels: Option<Vec<i64>>,
}

/// One model run's inputs, in graph-input order.
pub type Sample = Vec<Tensor>;

/// Splits batches into per-run samples of the graph's input shapes and dtypes.
pub fn samples(g: &Graph, batches: &[Batch], what: &str) -> Result<Vec<Sample>> {
    let mut per_input: Vec<Vec<Tensor>> = Vec::new();
    for &id in &g.inputs {
        let info = &g.tensors[id];
        let named: Vec<&Batch> = batches
            .iter()
            .filter(|b| b.input.as_deref() == Some(info.name.as_str()))
            .collect();
        let batch = match (named.as_slice(), batches) {
            ([b], _) => *b,
            ([], [b]) if b.input.is_none() && g.inputs.len() == 1 => b,
            _ => bail!(
                "{what}: give data for input \"{}\" as {what} {}=FILE (inputs: {})",
                info.name,
                info.name,
                g.inputs
                    .iter()
                    .map(|&i| g.tensors[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let size: usize = info.shape.iter().product();
        let total = batch.data.len();
        if total == 0 {
            bail!(
                "{what}: data of shape {:?} for input \"{}\" holds no samples",
                batch.data.shape,
                info.name
            );
        }
        if size == 0 || total % size != 0 {
            bail!(
                "{what}: data of shape {:?} does not split into inputs \"{}\" of shape {:?}",
                batch.data.shape,
                info.name,
                info.shape
            );
        }
        let data = convert(&batch.data, info.dtype)
            .map_err(|e| anyhow::anyhow!("{what}: input \"{}\": {e}", info.name))?;
        let bytes = size * info.dtype.size();
        let split = data
            .bytes()
            .chunks_exact(bytes)
            .map(|c| Tensor::from_bytes(info.dtype, &info.shape, c))
            .collect::<Result<Vec<_>, _>>()?;
        per_input.push(split);
    }
    let n = per_input.iter().map(Vec::len).min().unwrap_or(0);
    if per_input.iter().any(|v| v.len() != n) {
        bail!(
            "{what}: the inputs' files hold different numbers of samples ({:?})",
            per_input.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
    let mut out: Vec<Sample> = (0..n).map(|_| Vec::new()).collect();
    for column in per_input {
        for (s, t) in out.iter_mut().zip(column) {
            s.push(t);
        }
    }
    Ok(out)
}

fn convert(t: &Tensor, to: DType) -> Result<Tensor> {
    if t.dtype == to {
        return Ok(t.clone());
    }
    Ok(match to {
        DType::F32 => Tensor::from_vec(&t.shape, t.to_f32_vec()?)?,
        DType::I64 if !matches!(t.dtype, DType::F32 | DType::F16) => {
            Tensor::from_vec(&t.shape, t.to_i64_vec()?)?
        }
        DType::I32 if !matches!(t.dtype, DType::F32 | DType::F16 | DType::I64) => Tensor::from_vec(
            &t.shape,
            t.to_i64_vec()?.into_iter().map(|v| v as i32).collect(),
        )?,
        _ => bail!("the data is {}, the model takes {to}", t.dtype),
    })
}

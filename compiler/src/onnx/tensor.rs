//! ONNX `TensorProto` → [`Tensor`], and ONNX element types → [`DType`].
//!
//! Written here rather than using tract's loader, which panics on some types: a bad model must
//! produce an error, never a panic.

use anyhow::{bail, Result};
use edgefuse_runtime::{DType, Tensor};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::TensorProto;

/// Largest tensor the importer accepts (bytes).
const MAX_BYTES: usize = 1 << 36;

/// Name of an ONNX element type code, for messages.
pub fn onnx_type_name(code: i32) -> String {
    match DataType::try_from(code) {
        Ok(t) => t.as_str_name().to_lowercase(),
        Err(_) => format!("type code {code}"),
    }
}

/// Maps an ONNX element type to the IR's. Doubles become f32.
pub fn dtype_from_onnx(code: i32) -> Result<DType> {
    Ok(match DataType::try_from(code) {
        Ok(DataType::Float) | Ok(DataType::Double) => DType::F32,
        Ok(DataType::Float16) => DType::F16,
        Ok(DataType::Int64) => DType::I64,
        Ok(DataType::Int32) => DType::I32,
        Ok(DataType::Int8) => DType::I8,
        Ok(DataType::Uint8) => DType::U8,
        Ok(DataType::Bool) => DType::Bool,
        _ => bail!(
            "element type {} is not supported by edgefuse (f32, f64, f16, i64, i32, i8, u8, bool are)",
            onnx_type_name(code)
        ),
    })
}

/// Checked element count of a shape given as ONNX dims.
pub fn dims_to_shape(dims: &[i64], what: &str) -> Result<Vec<usize>> {
    let mut shape = Vec::with_capacity(dims.len());
    let mut n: usize = 1;
    for &d in dims {
        if d < 0 {
            bail!("{what} has a negative dimension in {dims:?}");
        }
        let d = usize::try_from(d)?;
        n = match n.checked_mul(d) {
            Some(n) if n <= MAX_BYTES => n,
            _ => bail!("{what} is too large: {dims:?}"),
        };
        shape.push(d);
    }
    Ok(shape)
}

/// Checks that a tensor of `shape` and `dtype` fits in [`MAX_BYTES`] (`what` names it).
pub fn check_size(shape: &[usize], dtype: DType, what: &str) -> Result<()> {
    let bytes = shape
        .iter()
        .try_fold(dtype.size(), |n, &d| n.checked_mul(d));
    match bytes {
        Some(b) if b <= MAX_BYTES => Ok(()),
        _ => bail!(
            "{what} of shape {shape:?} {dtype} is too large (edgefuse takes tensors up to {} GiB)",
            MAX_BYTES >> 30
        ),
    }
}

fn check_count(name: &str, have: usize, want: usize) -> Result<()> {
    if have != want {
        bail!("tensor \"{name}\" holds {have} values, its shape needs {want}");
    }
    Ok(())
}

/// Converts a `TensorProto` (raw_data or typed fields) into an owned tensor.
pub fn tensor_from_proto(t: &TensorProto) -> Result<Tensor> {
    let name = t.name.as_str();
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        bail!(
            "tensor \"{name}\" keeps its data in an external file, which edgefuse does not read; \
             save the model with its data inline (onnx.save(model, path, save_as_external_data=False))"
        );
    }
    if t.segment.is_some() {
        bail!("tensor \"{name}\" is segmented, which edgefuse does not read");
    }
    let shape = dims_to_shape(&t.dims, &format!("tensor \"{name}\""))?;
    let n: usize = shape.iter().product();
    let dtype =
        dtype_from_onnx(t.data_type).map_err(|e| anyhow::anyhow!("tensor \"{name}\": {e}"))?;
    let is_double = t.data_type == DataType::Double as i32;
    if !t.raw_data.is_empty() || n == 0 {
        let raw = &t.raw_data;
        if is_double {
            check_count(name, raw.len() / 8, n)?;
            if raw.len() != 8 * n {
                bail!(
                    "tensor \"{name}\" has {} raw bytes, not a multiple of 8",
                    raw.len()
                );
            }
            let v: Vec<f32> = raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect();
            return Ok(Tensor::from_vec(&shape, v)?);
        }
        if raw.len() != n * dtype.size() {
            bail!(
                "tensor \"{name}\" of shape {shape:?} {dtype} needs {} raw bytes, has {}",
                n * dtype.size(),
                raw.len()
            );
        }
        return Ok(Tensor::from_bytes(dtype, &shape, raw)?);
    }
    let bytes: Vec<u8> = match DataType::try_from(t.data_type) {
        Ok(DataType::Float) => {
            check_count(name, t.float_data.len(), n)?;
            bytemuck::cast_slice(&t.float_data).to_vec()
        }
        Ok(DataType::Double) => {
            check_count(name, t.double_data.len(), n)?;
            let v: Vec<f32> = t.double_data.iter().map(|&x| x as f32).collect();
            bytemuck::cast_slice(&v).to_vec()
        }
        Ok(DataType::Int64) => {
            check_count(name, t.int64_data.len(), n)?;
            bytemuck::cast_slice(&t.int64_data).to_vec()
        }
        Ok(DataType::Int32) => {
            check_count(name, t.int32_data.len(), n)?;
            bytemuck::cast_slice(&t.int32_data).to_vec()
        }
        Ok(DataType::Float16) => {
            check_count(name, t.int32_data.len(), n)?;
            t.int32_data
                .iter()
                .flat_map(|&v| (v as u16).to_le_bytes())
                .collect()
        }
        Ok(DataType::Int8) | Ok(DataType::Uint8) => {
            check_count(name, t.int32_data.len(), n)?;
            t.int32_data.iter().map(|&v| v as u8).collect()
        }
        Ok(DataType::Bool) => {
            check_count(name, t.int32_data.len(), n)?;
            t.int32_data.iter().map(|&v| (v != 0) as u8).collect()
        }
        _ => bail!("tensor \"{name}\": unsupported element type"),
    };
    Ok(Tensor::from_bytes(dtype, &shape, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_and_errors() {
        let t = TensorProto {
            dims: vec![2],
            data_type: DataType::Int64 as i32,
            int64_data: vec![3, -1],
            ..Default::default()
        };
        assert_eq!(
            tensor_from_proto(&t).unwrap().to_i64_vec().unwrap(),
            vec![3, -1]
        );
        let t = TensorProto {
            dims: vec![3],
            data_type: DataType::Float as i32,
            float_data: vec![1.0],
            ..Default::default()
        };
        assert!(tensor_from_proto(&t).is_err());
        let t = TensorProto {
            dims: vec![1],
            data_type: DataType::Uint4 as i32,
            raw_data: vec![1],
            ..Default::default()
        };
        assert!(tensor_from_proto(&t).is_err());
        let t = TensorProto {
            dims: vec![1],
            data_type: DataType::Double as i32,
            raw_data: 2.5f64.to_le_bytes().to_vec(),
            ..Default::default()
        };
        assert_eq!(
            tensor_from_proto(&t).unwrap().to_f32_vec().unwrap(),
            vec![2.5]
        );
        let t = TensorProto {
            dims: vec![-2],
            data_type: DataType::Float as i32,
            ..Default::default()
        };
        assert!(tensor_from_proto(&t).is_err());
    }
}

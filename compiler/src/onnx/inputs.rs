//! Static shapes for graph inputs: the model's dims, with symbolic ones taken from the caller.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::Fact;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::pb::ValueInfoProto;

use super::tensor::{check_size, dtype_from_onnx};

fn shape_hint(name: &str) -> String {
    format!("give it with --input {name}=1x3x224x224 (the shape this input should have)")
}

/// The static fact of one graph input.
pub fn input_fact(vi: &ValueInfoProto, given: Option<&[usize]>) -> Result<Fact> {
    let name = &vi.name;
    let Some(TypeValue::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        bail!("graph input \"{name}\" is not a tensor");
    };
    let dtype = dtype_from_onnx(tt.elem_type)
        .map_err(|e| anyhow::anyhow!("graph input \"{name}\": {e}"))?;
    // Model dims: Some(n) fixed, None symbolic/unknown.
    let model: Option<Vec<(Option<usize>, String)>> = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(Dim::DimValue(v)) if *v > 0 => (Some(*v as usize), v.to_string()),
                // 0 and -1 are how some exporters write an unknown size: unknown here too,
                // named as written.
                Some(Dim::DimValue(v)) => (None, v.to_string()),
                Some(Dim::DimParam(p)) if !p.is_empty() => (None, format!("\"{p}\"")),
                _ => (None, "?".to_string()),
            })
            .collect()
    });
    if let Some(g) = given {
        if g.contains(&0) {
            bail!("the shape given for input \"{name}\" {g:?} has a zero dimension");
        }
        if let Some(m) = &model {
            if m.len() != g.len() {
                bail!(
                    "input \"{name}\" has rank {} in the model, the shape given {g:?} has rank {}",
                    m.len(),
                    g.len()
                );
            }
            for (i, ((fixed, _), &d)) in m.iter().zip(g).enumerate() {
                if let Some(f) = fixed {
                    if *f != d {
                        bail!("input \"{name}\" dimension {i} is {f} in the model, the shape given {g:?} says {d}");
                    }
                }
            }
        }
        check_size(g, dtype, &format!("input \"{name}\""))?;
        return Ok(Fact::new(dtype, g.to_vec()));
    }
    let Some(m) = model else {
        bail!(
            "input \"{name}\" has no shape in the model; {}",
            shape_hint(name)
        );
    };
    let mut shape = Vec::with_capacity(m.len());
    for (i, (fixed, label)) in m.iter().enumerate() {
        match fixed {
            Some(d) => shape.push(*d),
            None if i == 0 => shape.push(1),
            None => bail!(
                "input \"{name}\" dimension {i} ({label}) is not fixed by the model; {}",
                shape_hint(name)
            ),
        }
    }
    check_size(&shape, dtype, &format!("input \"{name}\""))?;
    Ok(Fact::new(dtype, shape))
}

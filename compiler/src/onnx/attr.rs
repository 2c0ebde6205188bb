//! Typed attribute getters with defaults. A present attribute of the wrong type is an error.

use anyhow::{bail, Result};
use edgefuse_runtime::Tensor;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto};

use super::tensor::tensor_from_proto;

fn type_name(a: &AttributeProto) -> &'static str {
    AttributeType::try_from(a.r#type)
        .map(|t| t.as_str_name())
        .unwrap_or("UNKNOWN")
}

/// Checks the attribute's declared type; `Undefined` (old writers) is accepted when `fallback`
/// says the expected field is set.
fn check(a: &AttributeProto, want: AttributeType, fallback: bool) -> Result<()> {
    let ok = a.r#type == want as i32 || (a.r#type == AttributeType::Undefined as i32 && fallback);
    if !ok {
        bail!(
            "attribute \"{}\" should be {}, got {}",
            a.name,
            want.as_str_name(),
            type_name(a)
        );
    }
    Ok(())
}

pub fn find<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub fn get_int(node: &NodeProto, name: &str) -> Result<Option<i64>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::Int, true)?;
            Ok(a.i)
        })
        .transpose()
}

pub fn get_float(node: &NodeProto, name: &str) -> Result<Option<f32>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::Float, true)?;
            Ok(a.f)
        })
        .transpose()
}

pub fn get_ints(node: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::Ints, true)?;
            Ok(a.ints.clone())
        })
        .transpose()
}

pub fn get_floats(node: &NodeProto, name: &str) -> Result<Option<Vec<f32>>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::Floats, true)?;
            Ok(a.floats.clone())
        })
        .transpose()
}

pub fn get_string(node: &NodeProto, name: &str) -> Result<Option<String>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::String, true)?;
            Ok(String::from_utf8_lossy(&a.s).into_owned())
        })
        .transpose()
}

pub fn get_strings(node: &NodeProto, name: &str) -> Result<Option<Vec<String>>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::Strings, true)?;
            Ok(a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect())
        })
        .transpose()
}

pub fn get_tensor(node: &NodeProto, name: &str) -> Result<Option<Tensor>> {
    find(node, name)
        .map(|a| {
            check(a, AttributeType::Tensor, a.t.is_some())?;
            match &a.t {
                Some(t) => tensor_from_proto(t),
                None => bail!("attribute \"{name}\" has no tensor"),
            }
        })
        .transpose()
}

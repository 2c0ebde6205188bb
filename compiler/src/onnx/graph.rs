//! The single pass over an ONNX graph: initializers, inputs, nodes in order, outputs.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Result};
use edgefuse_runtime::ir::ops::{Unary, UnaryOp};
use edgefuse_runtime::ir::{Node, Op, TensorId};
use tract_onnx::pb::{ModelProto, NodeProto};

use super::context::{Builder, NodeCtx};
use super::inputs::input_fact;
use super::registry::Registry;
use super::tensor::tensor_from_proto;
use super::{MAX_OPSET, MIN_OPSET};
use crate::Module;

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

pub fn import_model(proto: &ModelProto, input_shapes: &[(String, Vec<usize>)]) -> Result<Module> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| anyhow!("the model has no graph"))?;
    let opset = proto
        .opset_import
        .iter()
        .filter(|o| is_default_domain(&o.domain))
        .map(|o| o.version)
        .max()
        .ok_or_else(|| anyhow!("the model does not import the default ONNX opset"))?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        bail!("the model uses ONNX opset {opset}; edgefuse reads opsets {MIN_OPSET} to {MAX_OPSET} (convert it with onnx.version_converter)");
    }

    let mut b = Builder::default();
    for init in &graph.initializer {
        let t = tensor_from_proto(init)?;
        let id = b.module.add_const(init.name.clone(), t);
        b.values.insert(init.name.clone(), id);
    }
    if !graph.sparse_initializer.is_empty() {
        bail!("the model has sparse initializers, which edgefuse does not read");
    }

    // Graph inputs, excluding those that are initializers.
    let mut used_overrides = HashSet::new();
    for vi in &graph.input {
        if b.values.contains_key(&vi.name) {
            continue;
        }
        let given = input_shapes
            .iter()
            .find(|(n, _)| *n == vi.name)
            .map(|(_, s)| s.as_slice());
        if given.is_some() {
            used_overrides.insert(vi.name.clone());
        }
        let fact = input_fact(vi, given)?;
        let id = b.module.add_value(vi.name.clone(), fact);
        b.module.graph.inputs.push(id);
        b.graph_inputs.insert(id);
        b.values.insert(vi.name.clone(), id);
    }
    for (n, _) in input_shapes {
        if !used_overrides.contains(n) {
            let names: Vec<&str> = b
                .module
                .graph
                .inputs
                .iter()
                .map(|&i| b.module.graph.tensors[i].name.as_str())
                .collect();
            bail!("a shape was given for \"{n}\", which is not an input of the model (its inputs: {names:?})");
        }
    }

    // onnxruntime's QOperator nodes as DequantizeLinear → float op → QuantizeLinear.
    let nodes = super::qoperator::lower(&graph.node)?;
    let produced_later: HashSet<&str> = nodes
        .iter()
        .flat_map(|(_, n)| n.output.iter().map(String::as_str))
        .collect();
    let registry = Registry::with_all_ops();
    if let Some(msg) = unsupported_ops(&nodes, &registry, opset) {
        bail!("{msg}");
    }
    for &(index, ref node) in &nodes {
        let label = format!("node #{index} \"{}\"", node.name);
        let Some(import) = registry.get(&node.domain, &node.op_type) else {
            bail!(
                "{label}: op \"{}\" is not supported by edgefuse",
                node.op_type
            );
        };
        let ctx_err = |e: anyhow::Error| anyhow!("{label} {}: {e:#}", node.op_type);
        let mut inputs = Vec::with_capacity(node.input.len());
        for name in &node.input {
            if name.is_empty() {
                inputs.push(None);
                continue;
            }
            match b.values.get(name) {
                Some(&id) => inputs.push(Some(id)),
                None if produced_later.contains(name.as_str()) => {
                    return Err(ctx_err(anyhow!(
                        "input \"{name}\" is computed by a later node: the graph is not topologically sorted"
                    )))
                }
                None => return Err(ctx_err(anyhow!("input \"{name}\" is not defined in the graph"))),
            }
        }
        let mut ctx = NodeCtx::new(node, index, opset, &mut b, inputs);
        import(&mut ctx).map_err(ctx_err)?;
        let bound = ctx.finish().map_err(ctx_err)?;
        for (name, id) in bound {
            if b.values.insert(name.clone(), id).is_some() {
                return Err(ctx_err(anyhow!("value \"{name}\" is defined twice")));
            }
        }
    }

    bind_outputs(&mut b, graph)?;
    Ok(b.module)
}

/// Graph outputs in ONNX order, each computed by a node and carrying its ONNX name.
fn bind_outputs(b: &mut Builder, graph: &tract_onnx::pb::GraphProto) -> Result<()> {
    if graph.output.is_empty() {
        bail!("the graph has no outputs");
    }
    let mut taken: HashMap<TensorId, ()> = HashMap::new();
    for vi in &graph.output {
        let name = &vi.name;
        let &id = b
            .values
            .get(name)
            .ok_or_else(|| anyhow!("graph output \"{name}\" is not computed by any node"))?;
        let m = &mut b.module;
        let needs_copy = m.is_const(id)
            || b.graph_inputs.contains(&id)
            || taken.contains_key(&id)
            || m.graph.tensors[id].name != *name;
        let out = if !needs_copy {
            id
        } else if !m.is_const(id) && !b.graph_inputs.contains(&id) && !taken.contains_key(&id) {
            // An alias of another node's output: that tensor takes the output's name.
            m.graph.tensors[id].name = name.clone();
            id
        } else {
            if m.graph.tensors[id].name == *name {
                m.graph.tensors[id].name = format!("{name}/value");
            }
            let fact = m.graph.tensors[id].fact();
            let o = m.add_value(name.clone(), fact);
            m.graph.nodes.push(Node {
                name: name.clone(),
                op: Op::Unary(Unary {
                    op: UnaryOp::Identity,
                }),
                inputs: vec![id],
                outputs: vec![o],
            });
            o
        };
        taken.insert(out, ());
        b.module.graph.outputs.push(out);
    }
    Ok(())
}

/// Every op of `nodes` edgefuse cannot import, named at once with the nodes that use it (the
/// first three of each), so a model's gaps show in one compile rather than one per attempt.
/// None when every node has an importer.
fn unsupported_ops(
    nodes: &[(usize, NodeProto)],
    registry: &Registry,
    opset: i64,
) -> Option<String> {
    // (op, domain) in order of first use, with the nodes using it.
    let mut found: Vec<((&str, &str), Vec<String>)> = Vec::new();
    for &(index, ref node) in nodes {
        let supported = registry.get(&node.domain, &node.op_type).is_some();
        if supported {
            continue;
        }
        let key = (node.op_type.as_str(), node.domain.as_str());
        let at = format!("node #{index} \"{}\"", node.name);
        match found.iter_mut().find(|(k, _)| *k == key) {
            Some((_, at_nodes)) => at_nodes.push(at),
            None => found.push((key, vec![at])),
        }
    }
    let describe = |(op, domain): (&str, &str)| {
        if is_default_domain(domain) {
            format!("op \"{op}\" (opset {opset})")
        } else {
            format!("op \"{op}\" of domain \"{domain}\"")
        }
    };
    match found.as_slice() {
        [] => None,
        [(key, at)] if at.len() == 1 => Some(format!(
            "{}: {} is not supported by edgefuse",
            at[0],
            describe(*key)
        )),
        _ => {
            let count: usize = found.iter().map(|(_, at)| at.len()).sum();
            let list: Vec<String> = found
                .iter()
                .map(|(key, at)| {
                    let more = match at.len() {
                        n if n > 3 => format!(" and {} more", n - 3),
                        _ => String::new(),
                    };
                    let shown = at.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
                    format!("{} at {shown}{more}", describe(*key))
                })
                .collect();
            Some(format!(
                "{count} nodes use ops edgefuse does not support: {}",
                list.join("; ")
            ))
        }
    }
}

//! Dead-code removal after import: drops nodes whose outputs nothing reads and constants no node
//! reads, renumbering tensors.

use edgefuse_runtime::ir::{Node, TensorId};

use crate::Module;

/// Rebuilds `m` keeping graph inputs, live nodes (all their outputs) and live constants.
pub fn prune(m: Module) -> Module {
    let n = m.graph.tensors.len();
    let mut live = vec![false; n];
    for &o in &m.graph.outputs {
        live[o] = true;
    }
    let mut keep_node = vec![false; m.graph.nodes.len()];
    for (k, node) in m.graph.nodes.iter().enumerate().rev() {
        if node.outputs.iter().any(|&o| live[o]) {
            keep_node[k] = true;
            for &i in &node.inputs {
                live[i] = true;
            }
        }
    }
    for (k, node) in m.graph.nodes.iter().enumerate() {
        if keep_node[k] {
            for &o in &node.outputs {
                live[o] = true;
            }
        }
    }
    for &i in &m.graph.inputs {
        live[i] = true;
    }
    let mut remap: Vec<Option<TensorId>> = vec![None; n];
    let mut out = Module::default();
    for (id, (info, c)) in m.graph.tensors.into_iter().zip(m.consts).enumerate() {
        if live[id] {
            remap[id] = Some(out.graph.tensors.len());
            out.graph.tensors.push(info);
            out.consts.push(c);
        }
    }
    let map = |i: TensorId| remap[i].expect("live tensor");
    out.graph.inputs = m.graph.inputs.iter().map(|&i| map(i)).collect();
    out.graph.outputs = m.graph.outputs.iter().map(|&i| map(i)).collect();
    out.graph.nodes = m
        .graph
        .nodes
        .into_iter()
        .zip(keep_node)
        .filter(|(_, k)| *k)
        .map(|(node, _)| Node {
            inputs: node.inputs.iter().map(|&i| map(i)).collect(),
            outputs: node.outputs.iter().map(|&i| map(i)).collect(),
            ..node
        })
        .collect();
    out
}

/// Checks the module's graph as a reader would, treating its constants as defined.
pub fn validate_module(m: &Module) -> anyhow::Result<()> {
    m.graph
        .validate_with_consts(&|i| m.is_const(i))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

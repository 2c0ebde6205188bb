//! Where each node of a graph runs under the CUDA backend, decided from the op and its facts
//! alone, so it needs no GPU (`edgefuse inspect --backend cuda`). A session may still move a
//! node to the CPU when building its kernel fails on the device (e.g. cuDNN missing).

use super::ops;
use crate::ir::{Fact, Graph};

/// Where one node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Gpu,
    /// On the CPU, with the reason; its inputs are copied to the host and outputs back.
    Cpu(String),
}

impl Placement {
    pub fn is_gpu(&self) -> bool {
        *self == Placement::Gpu
    }
    /// `cuda` or `cpu`, as `inspect` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Placement::Gpu => "cuda",
            Placement::Cpu(_) => "cpu",
        }
    }
}

/// The static placement of every node.
pub fn placements(graph: &Graph) -> Vec<Placement> {
    graph
        .nodes
        .iter()
        .map(|n| {
            let facts = |ids: &[usize]| -> Vec<Fact> {
                ids.iter().map(|&i| graph.tensors[i].fact()).collect()
            };
            match ops::supports(&n.op, &facts(&n.inputs), &facts(&n.outputs)) {
                Ok(()) => Placement::Gpu,
                Err(why) => Placement::Cpu(why),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ops::{Binary, BinaryOp, Unary, UnaryOp};
    use crate::ir::{Node, Op, TensorInfo};
    use crate::DType;

    fn t(name: &str, dtype: DType) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype,
            shape: vec![4],
            weight: None,
            quant: None,
        }
    }

    #[test]
    fn float_arithmetic_is_on_the_gpu_comparisons_are_not() {
        let g = Graph {
            tensors: vec![
                t("x", DType::F32),
                t("y", DType::F32),
                t("z", DType::Bool),
                t("w", DType::F32),
            ],
            nodes: vec![
                Node {
                    name: "relu".into(),
                    op: Op::Unary(Unary { op: UnaryOp::Relu }),
                    inputs: vec![0],
                    outputs: vec![1],
                },
                Node {
                    name: "eq".into(),
                    op: Op::Binary(Binary {
                        op: BinaryOp::Equal,
                    }),
                    inputs: vec![0, 1],
                    outputs: vec![2],
                },
                Node {
                    name: "add".into(),
                    op: Op::Binary(Binary { op: BinaryOp::Add }),
                    inputs: vec![0, 1],
                    outputs: vec![3],
                },
            ],
            inputs: vec![0],
            outputs: vec![2, 3],
        };
        g.validate().unwrap();
        let p = placements(&g);
        assert_eq!(p[0], Placement::Gpu);
        assert!(matches!(&p[1], Placement::Cpu(why) if why.contains("Equal")));
        assert_eq!(p[2], Placement::Gpu);
    }
}

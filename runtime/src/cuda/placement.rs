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

    /// Ops without a CUDA kernel stay on the CPU, named: PRelu and the logical ops among the
    /// binaries, the newer activations, LayerNormalization, ArgMax.
    #[test]
    fn ops_without_cuda_kernels_fall_back_per_node() {
        use crate::ir::ops::{ArgReduce, LayerNorm};
        let mut tensors: Vec<TensorInfo> = ["x", "s", "p", "l", "u"]
            .iter()
            .map(|n| t(n, DType::F32))
            .collect();
        tensors.push(TensorInfo {
            shape: vec![],
            ..t("a", DType::I64)
        });
        let node = |name: &str, op, inputs: Vec<usize>, output| Node {
            name: name.into(),
            op,
            inputs,
            outputs: vec![output],
        };
        let g = Graph {
            tensors,
            nodes: vec![
                node(
                    "prelu",
                    Op::Binary(Binary {
                        op: BinaryOp::PRelu,
                    }),
                    vec![0, 1],
                    2,
                ),
                node(
                    "ln",
                    Op::LayerNorm(LayerNorm {
                        axis: 0,
                        epsilon: 1e-5,
                    }),
                    vec![2, 1],
                    3,
                ),
                node("sin", Op::Unary(Unary { op: UnaryOp::Sin }), vec![3], 4),
                node(
                    "argmax",
                    Op::ArgReduce(ArgReduce {
                        max: true,
                        axis: 0,
                        keepdims: false,
                        last: false,
                    }),
                    vec![4],
                    5,
                ),
            ],
            inputs: vec![0, 1],
            outputs: vec![5],
        };
        g.validate().unwrap();
        let p = placements(&g);
        for (p, name) in p
            .iter()
            .zip(["PRelu", "LayerNormalization", "Sin", "ArgMax"])
        {
            assert!(
                matches!(p, Placement::Cpu(why) if why.contains(name)),
                "{p:?}"
            );
        }
    }
}

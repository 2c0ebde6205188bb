//! A whole session on a small graph, fp32 and fp16, against the CPU session: Conv (+bias,
//! ReLU) → GlobalAveragePool → Reshape → Gemm → Softmax, with a comparison (Equal, CPU only)
//! reading the convolution's output, so the fp16 plan has casts at the input, at the output and
//! around a CPU node. Skipped without a GPU.

use std::sync::Arc;

use super::{CudaOptions, CudaSession};
use crate::cpu::{Session, SessionOptions};
use crate::cuda::ops::testing::{device, values};
use crate::cuda::Precision;
use crate::ir::ops::{
    Binary, BinaryOp, Conv, Gemm, GlobalPool, PoolKind, Reshape, Softmax, UnaryOp,
};
use crate::ir::{Graph, Op, TensorInfo};
use crate::tensor::DType;
use crate::testing::node;
use crate::{Model, Tensor};

fn info(name: &str, dtype: DType, shape: &[usize]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        weight: None,
        quant: None,
    }
}

/// The model, its weights stored as f16 when `f16`.
fn model(f16: bool) -> Arc<Model> {
    let f = DType::F32;
    let graph = Graph {
        tensors: vec![
            info("x", f, &[1, 4, 8, 8]),              // 0
            info("w", f, &[8, 4, 3, 3]),              // 1
            info("b", f, &[8]),                       // 2
            info("c", f, &[1, 8, 8, 8]),              // 3
            info("p", f, &[1, 8, 1, 1]),              // 4
            info("r", f, &[1, 8]),                    // 5
            info("W", f, &[10, 8]),                   // 6
            info("B", f, &[10]),                      // 7
            info("g", f, &[1, 10]),                   // 8
            info("probs", f, &[1, 10]),               // 9
            info("same", DType::Bool, &[1, 8, 8, 8]), // 10
        ],
        nodes: vec![
            node(
                "conv",
                Op::Conv(Conv {
                    kernel: vec![3, 3],
                    strides: vec![1, 1],
                    pads: vec![1, 1, 1, 1],
                    dilations: vec![1, 1],
                    group: 1,
                    has_bias: true,
                    act: Some(UnaryOp::Relu),
                    residual: false,
                }),
                &[0, 1, 2],
                &[3],
            ),
            node(
                "pool",
                Op::GlobalPool(GlobalPool {
                    kind: PoolKind::Avg,
                }),
                &[3],
                &[4],
            ),
            node(
                "flat",
                Op::Reshape(Reshape { shape: vec![1, 8] }),
                &[4],
                &[5],
            ),
            node(
                "fc",
                Op::Gemm(Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_a: false,
                    trans_b: true,
                    act: None,
                }),
                &[5, 6, 7],
                &[8],
            ),
            node(
                "softmax",
                Op::Softmax(Softmax {
                    axis: 1,
                    log: false,
                }),
                &[8],
                &[9],
            ),
            node(
                "eq",
                Op::Binary(Binary {
                    op: BinaryOp::Equal,
                }),
                &[3, 3],
                &[10],
            ),
        ],
        inputs: vec![0],
        outputs: vec![9, 10],
    };
    let weight = |shape: &[usize], seed: u64| {
        let t = values(shape, seed);
        if !f16 {
            return t;
        }
        let h: Vec<half::f16> = t
            .to_f32_vec()
            .unwrap()
            .into_iter()
            .map(half::f16::from_f32)
            .collect();
        Tensor::from_vec(shape, h).unwrap()
    };
    let consts: Vec<Option<Tensor>> = (0..graph.tensors.len())
        .map(|i| match i {
            1 => Some(weight(&[8, 4, 3, 3], 2)),
            2 => Some(weight(&[8], 3)),
            6 => Some(weight(&[10, 8], 4)),
            7 => Some(weight(&[10], 5)),
            _ => None,
        })
        .collect();
    crate::testing::model(graph, &consts)
}

#[test]
fn sessions_in_fp32_and_fp16_match_the_cpu() {
    if device().is_none() {
        return;
    }
    let x = values(&[1, 4, 8, 8], 1);
    for (f16, run_as, tol) in [
        (false, None, 1e-5),
        (true, None, 1e-2),
        (false, Some(Precision::F16), 1e-2),
    ] {
        let m = model(f16);
        let want = Session::new(m.clone(), SessionOptions::with_threads(1))
            .unwrap()
            .run_tensors(std::slice::from_ref(&x))
            .unwrap();
        let opts = CudaOptions {
            precision: run_as,
            ..CudaOptions::default()
        };
        let mut s = CudaSession::new(m, &opts).unwrap();
        let expect = run_as.unwrap_or(if f16 { Precision::F16 } else { Precision::F32 });
        assert_eq!(s.precision(), expect);
        assert!(!s.placements()[5].is_gpu(), "Equal runs on the CPU");
        if expect == Precision::F16 {
            assert_eq!(s.node_dtypes()[0], Some(DType::F16));
            // One cast: c back to f32 for the CPU's Equal. x (256 values) is narrowed and
            // probs (10) widened by the host (`precision::HOST_CAST_MAX`). The Softmax runs
            // inside the Gemm's kernel (`cuda::fuse`).
            assert_eq!(s.device_graph().nodes.len(), 5 + 1);
        }
        for _ in 0..3 {
            let got = s.run_tensors(std::slice::from_ref(&x)).unwrap();
            let (g, w) = (got[0].to_f32_vec().unwrap(), want[0].to_f32_vec().unwrap());
            let d = g
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(d <= tol, "{expect:?} (f16 file: {f16}): max |diff| {d}");
            assert_eq!(got[1].bytes(), want[1].bytes(), "{expect:?}: Equal");
            assert_eq!(got[0].dtype, DType::F32);
        }
        // Per-node timing: the same answer, every node timed on every run, then off again.
        s.set_profiling(true).unwrap();
        for _ in 0..2 {
            let got = s.run_tensors(std::slice::from_ref(&x)).unwrap();
            assert_eq!(
                got[1].bytes(),
                want[1].bytes(),
                "{expect:?}: profiled Equal"
            );
        }
        let p = s.profile().unwrap();
        assert_eq!(p.len(), s.device_graph().nodes.len());
        assert!(p.iter().all(|t| t.calls == 2), "{p:?}");
        assert!(p.iter().map(|t| t.nanos).sum::<u64>() > 0);
        s.set_profiling(false).unwrap();
        assert!(s.profile().is_none());
        eprintln!("session {expect:?} (f16 weights: {f16}) matches the CPU");
    }
}

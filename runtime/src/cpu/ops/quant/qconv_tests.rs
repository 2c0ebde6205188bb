//! QConv against the float definition: every plan (depthwise, batched, unfolded, shifted,
//! direct, column-split), byte and f32 outputs, on 1 and 2 threads.

use crate::cpu::ops::eval;
use crate::cpu::ops::eval_threads;
use crate::ir::ops::{Conv, QConv, QOut, QScale, UnaryOp};
use crate::ir::Op;
use crate::tensor::DType;
use crate::Tensor;

fn bytes(dtype: DType, shape: &[usize], seed: usize) -> Tensor {
    let mut t = Tensor::zeros(dtype, shape);
    for (i, b) in t.bytes_mut().iter_mut().enumerate() {
        *b = ((i * 131 + seed * 17) % 251) as u8;
    }
    t
}

/// Float reference: dequantize, convolve, then the op's requantization (or f32 out).
fn reference(op: &QConv, x: &Tensor, w: &Tensor, bias: &Tensor) -> Vec<f32> {
    let deq = |t: &Tensor, scale: &dyn Fn(usize) -> f32, zp: &dyn Fn(usize) -> i32, per: usize| {
        let v: Vec<f32> = t
            .bytes()
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let q = if t.dtype == DType::I8 {
                    b as i8 as i32
                } else {
                    b as i32
                };
                (q - zp(i / per)) as f32 * scale(i / per)
            })
            .collect();
        Tensor::from_vec(&t.shape, v).unwrap()
    };
    let xf = deq(x, &|_| op.x.scale, &|_| op.x.zero_point, usize::MAX);
    let per = w.shape[1..].iter().product();
    let wf = deq(w, &|m| op.w_scale[m], &|m| op.w_zero_point[m], per);
    let y = eval(&Op::Conv(op.conv.clone()), &[&xf, &wf, bias]).unwrap();
    let y = y[0].as_slice::<f32>().unwrap().to_vec();
    match op.out.q {
        None => y,
        Some(q) => y
            .iter()
            .map(|v| {
                let r = (v / q.scale).round_ties_even() + q.zero_point as f32;
                let (lo, hi) = if op.out.dtype == DType::I8 {
                    (-128.0, 127.0)
                } else {
                    (0.0, 255.0)
                };
                (r.clamp(lo, hi) - q.zero_point as f32) * q.scale
            })
            .collect(),
    }
}

fn values(t: &Tensor, op: &QConv) -> Vec<f32> {
    match op.out.q {
        None => t.as_slice::<f32>().unwrap().to_vec(),
        Some(q) => t
            .bytes()
            .iter()
            .map(|&b| {
                let v = if t.dtype == DType::I8 {
                    b as i8 as i32
                } else {
                    b as i32
                };
                (v - q.zero_point) as f32 * q.scale
            })
            .collect(),
    }
}

/// Depthwise (blocks of channels, byte and f32 outputs), batched (small planes, several
/// images), unfolded, shifted (stride 1, padded or not) and direct plans against the float
/// definition: each output within one output step (or 1e-4
/// relative for f32 outputs).
#[test]
fn qconv_plans_match_the_float_definition() {
    // (x shape, output channels, kernel, strides, pads, group)
    type Case = (
        &'static [usize],
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 4],
        usize,
    );
    let cases: [Case; 16] = [
        // Enough work for two threads, few rows: the columns split over the threads (on
        // VNNI written straight into the output, in runs of whole cache lines: the second
        // case's 784-pixel rows split at column 448).
        (&[1, 32, 20, 20], 24, [3, 3], [1, 1], [1, 1, 1, 1], 1),
        (&[1, 16, 28, 28], 24, [1, 1], [1, 1], [0, 0, 0, 0], 1),
        (&[1, 48, 16, 16], 40, [1, 1], [1, 1], [0, 0, 0, 0], 1),
        (&[1, 20, 9, 11], 20, [3, 3], [2, 2], [1, 1, 1, 1], 20),
        (&[2, 17, 12, 12], 17, [5, 5], [1, 1], [2, 2, 2, 2], 17),
        (&[3, 4, 7, 6], 5, [3, 3], [1, 1], [1, 1, 1, 1], 1),
        (&[1, 6, 9, 8], 4, [3, 3], [1, 1], [0, 0, 0, 0], 2),
        (&[1, 3, 8, 7], 5, [3, 2], [1, 1], [0, 1, 2, 0], 1),
        (&[2, 6, 9, 9], 8, [3, 3], [2, 2], [0, 1, 1, 0], 2),
        (&[3, 8, 4, 5], 6, [1, 1], [1, 1], [0, 0, 0, 0], 1),
        (&[1, 4, 30, 30], 3, [3, 3], [1, 1], [1, 1, 1, 1], 1),
        (&[1, 16, 24, 24], 7, [1, 1], [1, 1], [0, 0, 0, 0], 1),
        // Batches run image by image (planes of 512 or more; depthwise), the images split
        // between the threads: shifted, unfolded (stride 2), read in place (1×1), depthwise.
        (&[4, 8, 26, 26], 16, [3, 3], [1, 1], [1, 1, 1, 1], 1),
        (&[3, 3, 50, 50], 8, [3, 3], [2, 2], [1, 1, 1, 1], 1),
        (&[3, 16, 24, 24], 8, [1, 1], [1, 1], [0, 0, 0, 0], 1),
        (&[3, 32, 20, 20], 32, [3, 3], [1, 1], [1, 1, 1, 1], 32),
    ];
    for (i, (xs, m, kernel, strides, pads, group)) in cases.into_iter().enumerate() {
        for (xd, out) in [
            (
                DType::U8,
                QOut {
                    dtype: DType::U8,
                    q: Some(QScale {
                        scale: 0.02,
                        zero_point: 100,
                    }),
                },
            ),
            (
                DType::I8,
                QOut {
                    dtype: DType::I8,
                    q: Some(QScale {
                        scale: 0.03,
                        zero_point: -5,
                    }),
                },
            ),
            (
                DType::U8,
                QOut {
                    dtype: DType::F32,
                    q: None,
                },
            ),
        ] {
            let op = QConv {
                conv: Conv {
                    kernel: kernel.to_vec(),
                    strides: strides.to_vec(),
                    pads: pads.to_vec(),
                    dilations: vec![1, 1],
                    group,
                    has_bias: true,
                    act: Some(UnaryOp::Relu).filter(|_| i % 2 == 0 && out.q.is_none()),
                    residual: false,
                },
                x: QScale {
                    scale: 0.01,
                    zero_point: if xd == DType::I8 { 3 } else { 120 },
                },
                w_scale: (0..m).map(|j| 0.002 + 0.0005 * j as f32).collect(),
                w_zero_point: vec![0; m],
                out,
            };
            let x = bytes(xd, xs, i);
            let w = bytes(DType::I8, &[m, xs[1] / group, kernel[0], kernel[1]], i + 7);
            let bias = Tensor::from_vec(
                &[m],
                (0..m).map(|j| j as f32 * 0.01 - 0.02).collect::<Vec<f32>>(),
            )
            .unwrap();
            let got = eval(&Op::QConv(op.clone()), &[&x, &w, &bias]).unwrap();
            let got2 = eval_threads(&Op::QConv(op.clone()), &[&x, &w, &bias], 2).unwrap();
            assert_eq!(
                got[0].bytes(),
                got2[0].bytes(),
                "case {i}: 1 and 2 threads differ"
            );
            let got = values(&got[0], &op);
            let want = reference(&op, &x, &w, &bias);
            let step = op.out.q.map_or(0.0, |q| q.scale);
            for (j, (g, r)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - r).abs() <= step * 1.01 + 1e-4 * r.abs().max(1.0),
                    "case {i} {xd:?}→{:?} at {j}: got {g}, want {r}",
                    op.out.dtype
                );
            }
        }
    }
}

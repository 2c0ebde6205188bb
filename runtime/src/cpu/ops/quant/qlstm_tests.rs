//! QLstm and QGru on the recurrent fixture cases, with W and R quantized per row:
//! - against the same recurrence computed in f64 products from the dequantized weights and the
//!   same dynamic quantization of X and h (tight: only summation order differs);
//! - against onnxruntime's float outputs (loose: the int8 error itself).

use edgefuse_kernels::rnn::{self, LstmExtras, RnnDims, RnnParams, RnnProducts};

use super::qrnn::{dynamic_params, quantize_u8};
use crate::cpu::ops::eval;
use crate::cpu::ops::recurrent::tests::{case_op, cases, tensor};
use crate::ir::ops::{Direction, QGru, QLstm};
use crate::ir::Op;
use crate::{DType, Tensor};

/// Per-row symmetric i8 quantization of a `[D, G·H, K]` tensor: (bytes, scales, dequantized).
fn quantize_rows(t: &Tensor) -> (Tensor, Vec<f32>, Vec<f32>) {
    let k = *t.shape.last().unwrap();
    let v = t.as_slice::<f32>().unwrap();
    let mut q = Vec::with_capacity(v.len());
    let mut scales = Vec::new();
    let mut deq = Vec::with_capacity(v.len());
    for row in v.chunks_exact(k) {
        let m = row.iter().fold(0f32, |a, x| a.max(x.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        for &x in row {
            let qi = (x / s).round().clamp(-127.0, 127.0) as i8;
            q.push(qi as u8);
            deq.push(qi as f32 * s);
        }
    }
    (
        Tensor::from_bytes(DType::I8, &t.shape, &q).unwrap(),
        scales,
        deq,
    )
}

/// `x` quantized and dequantized as the int8 products do.
fn fake_quant(x: &[f32]) -> Vec<f64> {
    let (s, z) = dynamic_params(x);
    x.iter()
        .map(|&v| (quantize_u8(v, 1.0 / s, z) as i32 - z) as f64 * s as f64)
        .collect()
}

/// The products in f64 from dequantized weights `[rows, K]`.
struct Reference {
    d: RnnDims,
    gh: usize,
    w: Vec<f32>,
    r: Vec<f32>,
}

impl RnnProducts for Reference {
    fn project(&mut self, x: &[f32], rows: usize, proj: &mut [f32]) {
        let (k, n) = (self.d.input, self.d.dirs * self.gh);
        let xd = fake_quant(&x[..rows * k]);
        for r in 0..rows {
            for j in 0..n {
                let acc: f64 = (0..k)
                    .map(|i| xd[r * k + i] * self.w[j * k + i] as f64)
                    .sum();
                proj[r * n + j] += acc as f32;
            }
        }
    }

    fn recur(
        &mut self,
        dir: usize,
        col0: usize,
        cols: usize,
        h: &[f32],
        rows: usize,
        gates: &mut [f32],
        ld: usize,
        accumulate: bool,
    ) {
        let (bs, hs) = (rows, self.d.hidden);
        let hd = fake_quant(&h[..bs * hs]);
        for b in 0..bs {
            for j in 0..cols {
                let row = dir * self.gh + col0 + j;
                let acc: f64 = (0..hs)
                    .map(|k| hd[b * hs + k] * self.r[row * hs + k] as f64)
                    .sum();
                let g = &mut gates[b * ld + j];
                *g = if accumulate {
                    *g + acc as f32
                } else {
                    acc as f32
                };
            }
        }
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.as_slice::<f32>()
        .unwrap()
        .iter()
        .zip(b.as_slice::<f32>().unwrap())
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}

#[test]
fn qlstm_and_qgru_match_the_dynamic_quantization_reference_and_stay_near_float() {
    let (mut worst_tight, mut worst_float) = (0f32, 0f32);
    let mut lstms = 0;
    for c in &cases() {
        let name = c["name"].as_str().unwrap();
        let (op, mut inputs) = case_op(c);
        let (wq, w_scale, w_deq) = quantize_rows(&inputs[1]);
        let (rq, r_scale, r_deq) = quantize_rows(&inputs[2]);
        inputs[1] = wq;
        inputs[2] = rq;
        let (qop, gates, hidden, dir, batch_first, names): (_, _, _, _, _, &[&str]) = match &op {
            Op::Lstm(l) => {
                lstms += 1;
                let qop = Op::QLstm(QLstm {
                    lstm: l.clone(),
                    w_scale,
                    r_scale,
                });
                (
                    qop,
                    4,
                    l.hidden,
                    l.direction,
                    l.batch_first,
                    &["Y", "Y_h", "Y_c"],
                )
            }
            Op::Gru(g) => {
                let qop = Op::QGru(QGru {
                    gru: g.clone(),
                    w_scale,
                    r_scale,
                });
                (qop, 3, g.hidden, g.direction, g.batch_first, &["Y", "Y_h"])
            }
            _ => unreachable!(),
        };
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let got = eval(&qop, &refs).unwrap();

        // The reference: the same recurrence, products from the dequantized weights.
        let x = &inputs[0];
        let (seq, batch) = if batch_first {
            (x.shape[1], x.shape[0])
        } else {
            (x.shape[0], x.shape[1])
        };
        let d = RnnDims {
            seq,
            batch,
            input: x.shape[2],
            hidden,
            dirs: dir.count(),
            reverse: dir == Direction::Reverse,
            batch_first,
        };
        let mut products = Reference {
            d,
            gh: gates * hidden,
            w: w_deq,
            r: r_deq,
        };
        let f = |k: usize| inputs[k].as_slice::<f32>().unwrap();
        let mut want: Vec<Tensor> = got
            .iter()
            .map(|t| Tensor::zeros(DType::F32, &t.shape))
            .collect();
        let mut k = 3;
        let mut next = |present: bool| {
            present.then(|| {
                k += 1;
                k - 1
            })
        };
        match &qop {
            Op::QLstm(q) => {
                let l = &q.lstm;
                let (b, h0, c0, p) = (
                    next(l.has_bias),
                    next(l.has_h0),
                    next(l.has_c0),
                    next(l.has_peepholes),
                );
                let params = RnnParams {
                    bias: b.map(f),
                    h0: h0.map(f),
                    clip: l.clip,
                };
                let extras = LstmExtras {
                    c0: c0.map(f),
                    peepholes: p.map(f),
                    input_forget: l.input_forget,
                };
                let mut scratch = vec![0.0; rnn::lstm_scratch(&d)];
                let [y, yh, yc] = &mut want[..] else {
                    unreachable!()
                };
                rnn::lstm_with(
                    &d,
                    &params,
                    &extras,
                    &mut products,
                    f(0),
                    y.as_slice_mut::<f32>().unwrap(),
                    yh.as_slice_mut::<f32>().unwrap(),
                    yc.as_slice_mut::<f32>().unwrap(),
                    &mut scratch,
                );
            }
            Op::QGru(q) => {
                let g = &q.gru;
                let (b, h0) = (next(g.has_bias), next(g.has_h0));
                let params = RnnParams {
                    bias: b.map(f),
                    h0: h0.map(f),
                    clip: g.clip,
                };
                let mut scratch = vec![0.0; rnn::gru_scratch(&d)];
                let [y, yh] = &mut want[..] else {
                    unreachable!()
                };
                rnn::gru_with(
                    &d,
                    &params,
                    g.linear_before_reset,
                    &mut products,
                    f(0),
                    y.as_slice_mut::<f32>().unwrap(),
                    yh.as_slice_mut::<f32>().unwrap(),
                    &mut scratch,
                );
            }
            _ => unreachable!(),
        }
        for ((g, w), n) in got.iter().zip(&want).zip(names) {
            let tight = max_diff(g, w);
            assert!(tight <= 1e-4, "{name} {n}: {tight:e} from the reference");
            worst_tight = worst_tight.max(tight);
            let float = max_diff(g, &tensor(&c["outputs"][*n]));
            assert!(
                float <= 0.06,
                "{name} {n}: {float} from onnxruntime's float"
            );
            worst_float = worst_float.max(float);
        }
    }
    assert!(lstms > 0);
    eprintln!("int8 recurrences: {worst_tight:e} from the reference, {worst_float} from float");
}

//! LSTM and GRU against onnxruntime: the cases in `tests/fixtures/rnn_cases.json`, produced by
//! `tests/fixtures/gen_rnn.py`. Each case runs twice: through `eval` (every input constant, so W
//! and R are packed at build) and with no constants (W and R read through strided views), the
//! second time on NaN-filled scratch so a read of uninitialised scratch shows.

use serde_json::Value;

use crate::cpu::ops::{build, eval, BuildCtx, Ctx};
use crate::ir::ops::{Direction, Gru, Lstm};
use crate::ir::{Fact, Op};
use crate::tensor::{AlignedBuf, TensorView, TensorViewMut};
use crate::Tensor;

const TOLERANCE: f32 = 1e-5;

pub(crate) fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_vec(&shape, data).unwrap()
}

/// The op and its inputs, in IR order.
pub(crate) fn case_op(c: &Value) -> (Op, Vec<Tensor>) {
    let ins = &c["inputs"];
    let has = |k: &str| !ins[k].is_null();
    let direction = match c["direction"].as_str().unwrap() {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        _ => Direction::Bidirectional,
    };
    let hidden = c["hidden"].as_u64().unwrap() as usize;
    let batch_first = c["layout"].as_u64() == Some(1);
    let clip = c["clip"].as_f64().map(|v| v as f32);
    let op = if c["op"] == "LSTM" {
        Op::Lstm(Lstm {
            hidden,
            direction,
            batch_first,
            has_bias: has("B"),
            has_h0: has("initial_h"),
            has_c0: has("initial_c"),
            has_peepholes: has("P"),
            clip,
            input_forget: c["input_forget"].as_u64() == Some(1),
        })
    } else {
        Op::Gru(Gru {
            hidden,
            direction,
            batch_first,
            has_bias: has("B"),
            has_h0: has("initial_h"),
            linear_before_reset: c["linear_before_reset"].as_u64() == Some(1),
            clip,
        })
    };
    let inputs = ["X", "W", "R", "B", "initial_h", "initial_c", "P"]
        .iter()
        .filter(|k| has(k))
        .map(|k| tensor(&ins[*k]))
        .collect();
    (op, inputs)
}

/// Runs `op` with no constant inputs, on NaN-filled scratch.
fn run_without_consts(op: &Op, inputs: &[Tensor]) -> Vec<Tensor> {
    let facts: Vec<Fact> = inputs
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
    let out_facts = op.infer(&facts).unwrap();
    let consts: Vec<Option<TensorView>> = vec![None; inputs.len()];
    let kernel = build(
        op,
        &BuildCtx {
            inputs: &facts,
            outputs: &out_facts,
            consts: &consts,
        },
    )
    .unwrap();
    let mut scratch = AlignedBuf::zeroed(kernel.scratch_bytes());
    let nan = f32::NAN.to_le_bytes();
    for (i, b) in scratch.as_mut_slice().iter_mut().enumerate() {
        *b = nan[i % 4];
    }
    let mut outs: Vec<Tensor> = out_facts
        .iter()
        .map(|f| Tensor::zeros(f.dtype, &f.shape))
        .collect();
    let views: Vec<TensorView> = inputs.iter().map(|t| t.view()).collect();
    let mut out_views: Vec<TensorViewMut> = outs.iter_mut().map(|t| t.view_mut()).collect();
    kernel
        .run(
            &views,
            &mut out_views,
            scratch.as_mut_slice(),
            &Ctx { threads: 1 },
        )
        .unwrap();
    drop(out_views);
    outs
}

fn compare(case: &str, how: &str, got: &[Tensor], want: &Value, names: &[&str]) -> Vec<String> {
    let mut errors = Vec::new();
    for (g, name) in got.iter().zip(names) {
        let w = tensor(&want[*name]);
        if g.shape != w.shape {
            errors.push(format!(
                "{case} ({how}) {name}: shape {:?}, want {:?}",
                g.shape, w.shape
            ));
            continue;
        }
        let (g, w) = (g.as_slice::<f32>().unwrap(), w.as_slice::<f32>().unwrap());
        let worst = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(
                0.0f32,
                |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
            );
        if worst > TOLERANCE {
            errors.push(format!("{case} ({how}) {name}: max error {worst:e}"));
        }
    }
    errors
}

/// The fixture cases (LSTM and GRU, every direction, layout and optional input).
pub(crate) fn cases() -> Vec<Value> {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rnn_cases.json"
    ));
    let root: Value = serde_json::from_str(text).unwrap();
    let cases = root["cases"].as_array().unwrap().clone();
    assert!(!cases.is_empty());
    cases
}

#[test]
fn rnn_cases_match_onnxruntime() {
    let cases = cases();
    let mut errors = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let (op, inputs) = case_op(c);
        let names: &[&str] = if matches!(op, Op::Lstm(_)) {
            &["Y", "Y_h", "Y_c"]
        } else {
            &["Y", "Y_h"]
        };
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let packed = eval(&op, &refs).unwrap();
        errors.extend(compare(name, "packed", &packed, &c["outputs"], names));
        let strided = run_without_consts(&op, &inputs);
        errors.extend(compare(name, "strided", &strided, &c["outputs"], names));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn rnn_rejects_mismatched_buffers_without_panicking() {
    let op = Op::Gru(Gru {
        hidden: 2,
        direction: Direction::Forward,
        batch_first: false,
        has_bias: false,
        has_h0: false,
        linear_before_reset: false,
        clip: None,
    });
    let x = Tensor::zeros(crate::DType::F32, &[3, 1, 2]);
    let w = Tensor::zeros(crate::DType::F32, &[1, 6, 2]);
    let r = Tensor::zeros(crate::DType::F32, &[1, 6, 2]);
    let facts: Vec<Fact> = [&x, &w, &r]
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
    let out_facts = op.infer(&facts).unwrap();
    let kernel = build(
        &op,
        &BuildCtx {
            inputs: &facts,
            outputs: &out_facts,
            consts: &[None, None, None],
        },
    )
    .unwrap();
    let short_x = Tensor::zeros(crate::DType::F32, &[2, 1, 2]);
    let mut outs: Vec<Tensor> = out_facts
        .iter()
        .map(|f| Tensor::zeros(f.dtype, &f.shape))
        .collect();
    let mut out_views: Vec<TensorViewMut> = outs.iter_mut().map(|t| t.view_mut()).collect();
    let mut scratch = AlignedBuf::zeroed(kernel.scratch_bytes());
    let err = kernel.run(
        &[short_x.view(), w.view(), r.view()],
        &mut out_views,
        scratch.as_mut_slice(),
        &Ctx { threads: 1 },
    );
    assert!(err.is_err());
}

/// A folded embedding's W (`compiler::passes::rnn`) is recognised as a column selection, and
/// nothing else is: the LSTM then skips its projection.
#[test]
fn column_selection_is_recognised() {
    let n = 8;
    let mut w: Vec<f32> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
        .collect();
    assert!(super::is_selection(&w, n, n));
    assert!(
        !super::is_selection(&w, n, n + 1),
        "input width must be D·G·H"
    );
    w[3] = 1e-30;
    assert!(!super::is_selection(&w, n, n));
    w[3] = 0.0;
    w[n + 1] = 0.5;
    assert!(!super::is_selection(&w, n, n));
}

//! Recurrent ops kept whole: LSTM and GRU (ONNX semantics, default activations).
//!
//! Inputs, in order, only those present: X [T, B, I] (or [B, T, I] when `batch_first`),
//! W [D, G·H, I], R [D, G·H, H], then B [D, 2·G·H] if `has_bias`, initial_h [D, B, H] if `has_h0`,
//! initial_c [D, B, H] if `has_c0` (LSTM), P [D, 3H] if `has_peepholes` (LSTM).
//! Outputs: Y [T, D, B, H] (or [B, T, D, H]), Y_h [D, B, H], Y_c [D, B, H] (LSTM).
//! Sequence lengths are not supported (the importer refuses a non-constant or ragged one).

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

impl Direction {
    pub fn count(self) -> usize {
        if self == Direction::Bidirectional {
            2
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lstm {
    pub hidden: usize,
    pub direction: Direction,
    pub batch_first: bool,
    pub has_bias: bool,
    pub has_h0: bool,
    pub has_c0: bool,
    pub has_peepholes: bool,
    /// Cell clip threshold (ONNX `clip`), if any.
    pub clip: Option<f32>,
    pub input_forget: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gru {
    pub hidden: usize,
    pub direction: Direction,
    pub batch_first: bool,
    pub has_bias: bool,
    pub has_h0: bool,
    pub linear_before_reset: bool,
    pub clip: Option<f32>,
}

/// Shared shape checks; returns (T, B, I).
/// A cell clip must be a positive threshold (the importer refuses others; a file could still
/// carry one, and the backends would read 0 differently).
fn check_clip(name: &str, clip: Option<f32>) -> Result<()> {
    match clip {
        // NaN is refused too.
        Some(c) if c.is_nan() || c <= 0.0 => Err(Error::invalid(format!(
            "{name} clip must be positive, got {c}"
        ))),
        _ => Ok(()),
    }
}

fn rnn_dims(
    name: &str,
    inputs: &[Fact],
    gates: usize,
    hidden: usize,
    dir: Direction,
    batch_first: bool,
) -> Result<(usize, usize)> {
    let x = &inputs[0];
    if x.rank() != 3 || inputs.iter().any(|f| f.dtype != DType::F32) {
        return Err(Error::invalid(format!(
            "{name} needs f32 X of rank 3, got {:?}",
            x.shape
        )));
    }
    let (t, b, i) = if batch_first {
        (x.shape[1], x.shape[0], x.shape[2])
    } else {
        (x.shape[0], x.shape[1], x.shape[2])
    };
    let d = dir.count();
    // A hidden size too large for its gates' rows matches no weight.
    let rows = gates.checked_mul(hidden);
    if rows.is_none_or(|g| inputs[1].shape != [d, g, i] || inputs[2].shape != [d, g, hidden]) {
        return Err(Error::invalid(format!(
            "{name} W {:?} / R {:?} do not match {d} direction(s), hidden {hidden}, input size {i}",
            inputs[1].shape, inputs[2].shape
        )));
    }
    Ok((t, b))
}

fn rnn_outputs(
    t: usize,
    b: usize,
    d: usize,
    h: usize,
    batch_first: bool,
    states: usize,
) -> Vec<Fact> {
    let y = if batch_first {
        vec![b, t, d, h]
    } else {
        vec![t, d, b, h]
    };
    let state = if batch_first {
        vec![b, d, h]
    } else {
        vec![d, b, h]
    };
    let mut out = vec![Fact::new(DType::F32, y)];
    for _ in 0..states {
        out.push(Fact::new(DType::F32, state.clone()));
    }
    out
}

fn check_state(
    name: &str,
    f: Option<&Fact>,
    d: usize,
    b: usize,
    h: usize,
    batch_first: bool,
) -> Result<()> {
    let want = if batch_first { [b, d, h] } else { [d, b, h] };
    match f {
        Some(f) if f.shape != want => Err(Error::invalid(format!(
            "{name} initial state {:?} should be {want:?}",
            f.shape
        ))),
        _ => Ok(()),
    }
}

impl OpInfo for Lstm {
    fn name(&self) -> &'static str {
        "LSTM"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        let n = 3
            + self.has_bias as usize
            + self.has_h0 as usize
            + self.has_c0 as usize
            + self.has_peepholes as usize;
        expect_inputs("LSTM", inputs, n, n)?;
        check_clip("LSTM", self.clip)?;
        let (t, b) = rnn_dims(
            "LSTM",
            inputs,
            4,
            self.hidden,
            self.direction,
            self.batch_first,
        )?;
        let (d, h) = (self.direction.count(), self.hidden);
        let mut k = 3;
        if self.has_bias {
            if inputs[k].shape != [d, 8 * h] {
                return Err(Error::invalid(format!(
                    "LSTM B {:?} should be [{d}, {}]",
                    inputs[k].shape,
                    8 * h
                )));
            }
            k += 1;
        }
        if self.has_h0 {
            check_state("LSTM", inputs.get(k), d, b, h, self.batch_first)?;
            k += 1;
        }
        if self.has_c0 {
            check_state("LSTM", inputs.get(k), d, b, h, self.batch_first)?;
            k += 1;
        }
        if self.has_peepholes && inputs[k].shape != [d, 3 * h] {
            return Err(Error::invalid(format!(
                "LSTM P {:?} should be [{d}, {}]",
                inputs[k].shape,
                3 * h
            )));
        }
        Ok(rnn_outputs(t, b, d, h, self.batch_first, 2))
    }
}

impl OpInfo for Gru {
    fn name(&self) -> &'static str {
        "GRU"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        let n = 3 + self.has_bias as usize + self.has_h0 as usize;
        expect_inputs("GRU", inputs, n, n)?;
        check_clip("GRU", self.clip)?;
        let (t, b) = rnn_dims(
            "GRU",
            inputs,
            3,
            self.hidden,
            self.direction,
            self.batch_first,
        )?;
        let (d, h) = (self.direction.count(), self.hidden);
        let mut k = 3;
        if self.has_bias {
            if inputs[k].shape != [d, 6 * h] {
                return Err(Error::invalid(format!(
                    "GRU B {:?} should be [{d}, {}]",
                    inputs[k].shape,
                    6 * h
                )));
            }
            k += 1;
        }
        if self.has_h0 {
            check_state("GRU", inputs.get(k), d, b, h, self.batch_first)?;
        }
        Ok(rnn_outputs(t, b, d, h, self.batch_first, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_that_is_not_positive_is_refused() {
        let lstm = |clip| Lstm {
            hidden: 2,
            direction: Direction::Forward,
            batch_first: false,
            has_bias: false,
            has_h0: false,
            has_c0: false,
            has_peepholes: false,
            clip,
            input_forget: false,
        };
        let f = |s: &[usize]| Fact::new(DType::F32, s.to_vec());
        let inputs = [f(&[3, 1, 4]), f(&[1, 8, 4]), f(&[1, 8, 2])];
        assert!(lstm(Some(0.5)).infer(&inputs).is_ok());
        for bad in [0.0, -1.0, f32::NAN] {
            let e = lstm(Some(bad)).infer(&inputs).unwrap_err().to_string();
            assert!(e.contains("clip"), "{e}");
        }
    }
}

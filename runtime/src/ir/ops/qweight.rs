//! Ops with int8 constant weights and float activations: what an int8 compile makes of LSTM, GRU
//! and embedding tables (`compiler::passes` folds their weights' DequantizeLinear into them).
//! Weights are i8, symmetric (zero point 0), with one f32 scale per output row:
//! `real = q·scale[row]`. QLstm/QGru quantize X and h at run time (dynamic quantization, as
//! ONNX Runtime's DynamicQuantizeLSTM does); states and gate math stay f32.
//! `DynamicQuantizeMatMul` is onnxruntime's `quantize_dynamic` MatMul pattern as one op: u8 or
//! i8 weights with per-tensor or per-column scales and zero points, X quantized at run time;
//! `DynamicQuantizeConv` is its Conv (ConvInteger) pattern as one op.

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Conv, Fact, Gru, Lstm, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

/// LSTM with i8 W `[D, 4H, I]` and R `[D, 4H, H]`; every other input and output as in [`Lstm`].
/// `w_scale` and `r_scale` hold one scale per row of W and R (`D·4H`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QLstm {
    pub lstm: Lstm,
    pub w_scale: Vec<f32>,
    pub r_scale: Vec<f32>,
}

/// GRU with i8 W `[D, 3H, I]` and R `[D, 3H, H]`, scales as in [`QLstm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QGru {
    pub gru: Gru,
    pub w_scale: Vec<f32>,
    pub r_scale: Vec<f32>,
}

/// Gather of rows (axis 0) of an i8 table `[V, ..]` with one scale per row: f32 out,
/// `[indices.., ..]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QGather {
    pub scale: Vec<f32>,
}

/// `Y[.., n] = sx·w_scale[n]·Σ_k (xq[.., k] − zx)·(W[k, n] − w_zero_point[n]) + B[n]`, where
/// `(xq, sx, zx)` is DynamicQuantizeLinear of the whole of X (one u8 range per run). Inputs: X
/// (f32) `[.., K]`, W (u8/i8, constant) `[K, N]` (MatMul's layout), optional B (f32) `[N]`.
/// `w_scale` and `w_zero_point` hold one value, or one per column of W. What onnxruntime's
/// `quantize_dynamic` writes as DynamicQuantizeLinear → MatMulInteger → Cast → Mul (→ Add), and
/// its `com.microsoft` DynamicQuantizeMatMul.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicQuantizeMatMul {
    pub w_scale: Vec<f32>,
    pub w_zero_point: Vec<i32>,
    pub has_bias: bool,
}

/// `Y[n, m, ..] = act(sx·w_scale[m]·Σ (xq − zx)·(W[m, ..] − w_zero_point[m]) + B[m])`: the
/// convolution `conv` of `(xq, sx, zx)`, DynamicQuantizeLinear of the whole of X (one u8 range
/// per run; padding reads `zx`, the real 0), with the constant u8/i8 weights W
/// `[M, C/group, *K]`. Inputs: X (f32) `[N, C, *S]`, W, optional B (f32) `[M]`.
/// `w_scale` and `w_zero_point` hold one value, or one per output channel. `conv.act` is the
/// fused activation; `conv.residual` is not taken. What onnxruntime's `quantize_dynamic` writes
/// for a Conv: DynamicQuantizeLinear → ConvInteger → Cast → Mul(sx·sw) (→ Add bias).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicQuantizeConv {
    pub conv: Conv,
    pub w_scale: Vec<f32>,
    pub w_zero_point: Vec<i32>,
}

fn check_scales(what: &str, s: &[f32], rows: usize) -> Result<()> {
    if s.len() != rows || s.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(Error::invalid(format!(
            "{what}: {} scales for {rows} weight rows (each must be finite and positive)",
            s.len()
        )));
    }
    Ok(())
}

/// Checks W and R are i8 with `rows` rows in all and their scales fit; returns the facts with W
/// and R as f32, for the float op's shape inference.
fn float_facts(name: &str, inputs: &[Fact], w_scale: &[f32], r_scale: &[f32]) -> Result<Vec<Fact>> {
    expect_inputs(name, inputs, 3, 8)?;
    if inputs[1].dtype != DType::I8 || inputs[2].dtype != DType::I8 {
        return Err(Error::invalid(format!(
            "{name} takes i8 W and R, got {} and {}",
            inputs[1].dtype, inputs[2].dtype
        )));
    }
    let rows = |f: &Fact| f.shape.iter().rev().skip(1).product::<usize>();
    check_scales(&format!("{name} W"), w_scale, rows(&inputs[1]))?;
    check_scales(&format!("{name} R"), r_scale, rows(&inputs[2]))?;
    let mut f = inputs.to_vec();
    f[1].dtype = DType::F32;
    f[2].dtype = DType::F32;
    Ok(f)
}

impl OpInfo for QLstm {
    fn name(&self) -> &'static str {
        "QLstm"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        let f = float_facts("QLstm", inputs, &self.w_scale, &self.r_scale)?;
        self.lstm.infer(&f)
    }
}

impl OpInfo for QGru {
    fn name(&self) -> &'static str {
        "QGru"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        let f = float_facts("QGru", inputs, &self.w_scale, &self.r_scale)?;
        self.gru.infer(&f)
    }
}

impl OpInfo for DynamicQuantizeMatMul {
    fn name(&self) -> &'static str {
        "DynamicQuantizeMatMul"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        let name = "DynamicQuantizeMatMul";
        expect_inputs(name, inputs, 2, 3)?;
        let (x, w) = (&inputs[0], &inputs[1]);
        if x.dtype != DType::F32
            || x.rank() < 1
            || !matches!(w.dtype, DType::U8 | DType::I8)
            || w.rank() != 2
        {
            return Err(Error::invalid(format!(
                "{name} takes f32 X [.., K] and u8/i8 W [K, N], got {} {:?} and {} {:?}",
                x.dtype, x.shape, w.dtype, w.shape
            )));
        }
        let (k, n) = (w.shape[0], w.shape[1]);
        if x.shape[x.rank() - 1] != k {
            return Err(Error::invalid(format!(
                "{name}: X {:?} does not match W {:?}",
                x.shape, w.shape
            )));
        }
        if self.has_bias != (inputs.len() == 3)
            || inputs
                .get(2)
                .is_some_and(|b| b.dtype != DType::F32 || b.shape != [n])
        {
            return Err(Error::invalid(format!(
                "{name}: the bias must be f32 [{n}]"
            )));
        }
        let count = self.w_scale.len();
        let range = if w.dtype == DType::I8 {
            -128..=127
        } else {
            0..=255
        };
        if !(count == 1 || count == n)
            || self.w_zero_point.len() != count
            || self.w_scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.w_zero_point.iter().any(|z| !range.contains(z))
        {
            return Err(Error::invalid(format!(
                "{name}: {count} weight scales / {} zero points do not fit {n} {} columns \
                 (scales finite and positive, zero points in the type's range)",
                self.w_zero_point.len(),
                w.dtype
            )));
        }
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("rank checked") = n;
        Ok(vec![Fact::new(DType::F32, shape)])
    }
}

impl OpInfo for DynamicQuantizeConv {
    fn name(&self) -> &'static str {
        "DynamicQuantizeConv"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        let name = "DynamicQuantizeConv";
        expect_inputs(name, inputs, 2, 3)?;
        let (x, w) = (&inputs[0], &inputs[1]);
        if x.dtype != DType::F32
            || !matches!(w.dtype, DType::U8 | DType::I8)
            || inputs.get(2).is_some_and(|b| b.dtype != DType::F32)
            || self.conv.residual
        {
            return Err(Error::invalid(format!(
                "{name} takes f32 X, u8/i8 W and an f32 bias (and no residual), got {} and {}",
                x.dtype, w.dtype
            )));
        }
        let m = w.shape.first().copied().unwrap_or(0);
        let count = self.w_scale.len();
        let range = if w.dtype == DType::I8 {
            -128..=127
        } else {
            0..=255
        };
        if !(count == 1 || count == m)
            || self.w_zero_point.len() != count
            || self.w_scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.w_zero_point.iter().any(|z| !range.contains(z))
        {
            return Err(Error::invalid(format!(
                "{name}: {count} weight scales / {} zero points do not fit {m} {} channels \
                 (scales finite and positive, zero points in the type's range)",
                self.w_zero_point.len(),
                w.dtype
            )));
        }
        let mut f = inputs.to_vec();
        f[1].dtype = DType::F32;
        self.conv.infer(&f)
    }
}

impl OpInfo for QGather {
    fn name(&self) -> &'static str {
        "QGather"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("QGather", inputs, 2, 2)?;
        let (x, idx) = (&inputs[0], &inputs[1]);
        if x.dtype != DType::I8 || x.rank() < 1 || !matches!(idx.dtype, DType::I64 | DType::I32) {
            return Err(Error::invalid(format!(
                "QGather takes an i8 table and i64/i32 indices, got {} {:?} and {}",
                x.dtype, x.shape, idx.dtype
            )));
        }
        check_scales("QGather", &self.scale, x.shape[0])?;
        let mut out = idx.shape.clone();
        out.extend_from_slice(&x.shape[1..]);
        Ok(vec![Fact::new(DType::F32, out)])
    }
}

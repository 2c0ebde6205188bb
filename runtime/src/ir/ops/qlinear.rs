//! Int8 compute ops: what QuantizeLinear/DequantizeLinear pairs around Conv, Gemm/MatMul, Add
//! and pooling become after `compiler::passes` folds them. Activations are u8 or i8 tensors
//! with one scale and zero point each (`real = (q − zero_point)·scale`); weights are constant
//! u8 or i8 with per-tensor or per-output-channel scales; biases stay f32. Outputs are
//! requantized to u8/i8, or f32 where the consumer computes in float.

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Conv, Fact, OpInfo, Pool, UnaryOp};
use crate::tensor::DType;
use crate::{Error, Result};

/// Per-tensor quantization parameters of an activation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QScale {
    pub scale: f32,
    pub zero_point: i32,
}

/// What an int8 op produces: `dtype` u8/i8 with `q` set, or f32 with `q` None.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QOut {
    pub dtype: DType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<QScale>,
}

fn is_q8(d: DType) -> bool {
    matches!(d, DType::U8 | DType::I8)
}

fn check_scale(what: &str, s: &QScale, dtype: DType) -> Result<()> {
    let range = if dtype == DType::I8 {
        -128..=127
    } else {
        0..=255
    };
    if !(s.scale.is_finite() && s.scale > 0.0 && range.contains(&s.zero_point)) {
        return Err(Error::invalid(format!(
            "{what}: scale {} / zero point {} invalid for {dtype}",
            s.scale, s.zero_point
        )));
    }
    Ok(())
}

impl QOut {
    fn check(&self, what: &str, act: Option<UnaryOp>) -> Result<()> {
        match (self.dtype, &self.q) {
            (DType::F32, None) => Ok(()),
            (d, Some(s)) if is_q8(d) => {
                check_scale(what, s, d)?;
                match act {
                    None | Some(UnaryOp::Relu) | Some(UnaryOp::Clip { .. }) => Ok(()),
                    Some(a) => Err(Error::invalid(format!(
                        "{what}: activation {a:?} cannot be folded into a quantized output"
                    ))),
                }
            }
            _ => Err(Error::invalid(format!(
                "{what}: output must be u8/i8 with a scale, or f32"
            ))),
        }
    }
}

/// Weight scales and zero points: one per tensor, or one per output channel (`m` of them).
fn check_weights(what: &str, scale: &[f32], zp: &[i32], m: usize, wt: DType) -> Result<()> {
    let n = scale.len();
    let range = if wt == DType::I8 { -128..=127 } else { 0..=255 };
    if !(n == 1 || n == m)
        || zp.len() != n
        || scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        || zp.iter().any(|z| !range.contains(z))
    {
        return Err(Error::invalid(format!(
            "{what}: {n} weight scales / {} zero points do not fit {m} {wt} channels",
            zp.len()
        )));
    }
    Ok(())
}

/// Quantized convolution. Inputs: X (u8/i8) [N, C, *S], W (u8/i8, constant) [M, C/group, *K],
/// optional B (f32) [M]. `conv.act` applies to the real-valued result; with a quantized output
/// only ReLU and Clip (which become the clamp) are allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QConv {
    pub conv: Conv,
    pub x: QScale,
    pub w_scale: Vec<f32>,
    pub w_zero_point: Vec<i32>,
    pub out: QOut,
}

impl OpInfo for QConv {
    fn name(&self) -> &'static str {
        "QConv"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("QConv", inputs, 2, 3)?;
        let (x, w) = (&inputs[0], &inputs[1]);
        if !is_q8(x.dtype)
            || !is_q8(w.dtype)
            || inputs.get(2).is_some_and(|b| b.dtype != DType::F32)
        {
            return Err(Error::invalid(
                "QConv takes u8/i8 input and weights and an f32 bias",
            ));
        }
        check_scale("QConv input", &self.x, x.dtype)?;
        check_weights(
            "QConv",
            &self.w_scale,
            &self.w_zero_point,
            w.shape.first().copied().unwrap_or(0),
            w.dtype,
        )?;
        self.out.check("QConv", self.conv.act)?;
        let mut f: Vec<Fact> = inputs.to_vec();
        f[0].dtype = DType::F32;
        f[1].dtype = DType::F32;
        let mut out = self.conv.infer(&f)?;
        out[0].dtype = self.out.dtype;
        Ok(out)
    }
}

/// Quantized matrix product `Y[.., n] = Σ_k X[.., k]·W[n, k] + B[n]`. Inputs: X (u8/i8)
/// [.., K], W (u8/i8, constant) [N, K] (Gemm's `trans_b` layout), optional B (f32) [N].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QGemm {
    pub x: QScale,
    pub w_scale: Vec<f32>,
    pub w_zero_point: Vec<i32>,
    pub has_bias: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<UnaryOp>,
    pub out: QOut,
}

impl OpInfo for QGemm {
    fn name(&self) -> &'static str {
        "QGemm"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("QGemm", inputs, 2, 3)?;
        let (x, w) = (&inputs[0], &inputs[1]);
        if !is_q8(x.dtype) || !is_q8(w.dtype) || x.rank() < 1 || w.rank() != 2 {
            return Err(Error::invalid("QGemm takes u8/i8 X [.., K] and W [N, K]"));
        }
        let (n, k) = (w.shape[0], w.shape[1]);
        if x.shape[x.rank() - 1] != k {
            return Err(Error::invalid(format!(
                "QGemm: X {:?} does not match W {:?}",
                x.shape, w.shape
            )));
        }
        if self.has_bias != (inputs.len() == 3)
            || inputs
                .get(2)
                .is_some_and(|b| b.dtype != DType::F32 || b.shape != [n])
        {
            return Err(Error::invalid(format!("QGemm bias must be f32 [{n}]")));
        }
        check_scale("QGemm input", &self.x, x.dtype)?;
        check_weights("QGemm", &self.w_scale, &self.w_zero_point, n, w.dtype)?;
        self.out.check("QGemm", self.act)?;
        let mut shape = x.shape.clone();
        *shape.last_mut().unwrap() = n;
        Ok(vec![Fact::new(self.out.dtype, shape)])
    }
}

/// Quantized elementwise Add of two same-shaped u8/i8 tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QAdd {
    pub a: QScale,
    pub b: QScale,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<UnaryOp>,
    pub out: QOut,
}

impl OpInfo for QAdd {
    fn name(&self) -> &'static str {
        "QAdd"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("QAdd", inputs, 2, 2)?;
        let (a, b) = (&inputs[0], &inputs[1]);
        if !is_q8(a.dtype) || !is_q8(b.dtype) || a.shape != b.shape {
            return Err(Error::invalid(format!(
                "QAdd takes two u8/i8 tensors of one shape, got {:?} {} and {:?} {}",
                a.shape, a.dtype, b.shape, b.dtype
            )));
        }
        check_scale("QAdd input", &self.a, a.dtype)?;
        check_scale("QAdd input", &self.b, b.dtype)?;
        self.out.check("QAdd", self.act)?;
        Ok(vec![Fact::new(self.out.dtype, a.shape.clone())])
    }
}

/// Quantized MaxPool / AveragePool (GlobalAveragePool is a window over the whole plane): u8/i8
/// in, the same type out, requantized from `x` to `out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QPool {
    pub pool: Pool,
    pub x: QScale,
    pub out: QScale,
}

impl OpInfo for QPool {
    fn name(&self) -> &'static str {
        "QPool"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("QPool", inputs, 1, 1)?;
        let x = &inputs[0];
        if !is_q8(x.dtype) {
            return Err(Error::invalid("QPool takes a u8/i8 tensor"));
        }
        check_scale("QPool input", &self.x, x.dtype)?;
        check_scale("QPool output", &self.out, x.dtype)?;
        let mut out = self.pool.infer(&[Fact::new(DType::F32, x.shape.clone())])?;
        out[0].dtype = x.dtype;
        Ok(out)
    }
}

//! What the int8 kernels share: activation domains and the requantizing epilogue's parameters.

use edgefuse_kernels::qgemm::{Epilogue, OutKind};

use crate::cpu::ops::nn::conv::Epilogue as FloatAct;
use crate::cpu::ops::unsupported;
use crate::ir::ops::{QOut, QScale, UnaryOp};
use crate::tensor::{DType, TensorView};
use crate::Result;

/// How a u8/i8 activation tensor's bytes map to the u8 domain the kernels use: `byte ^ xor`,
/// with zero point `zp`.
#[derive(Debug, Clone, Copy)]
pub struct Domain {
    pub xor: u8,
    pub zp: i32,
}

impl Domain {
    pub fn new(dtype: DType, q: &QScale) -> Domain {
        match dtype {
            DType::I8 => Domain {
                xor: 0x80,
                zp: q.zero_point + 128,
            },
            _ => Domain {
                xor: 0,
                zp: q.zero_point,
            },
        }
    }
}

/// The output stage: `y = acc·mult[m] + add[m]` then this kind, then (f32 outputs with an
/// activation other than ReLU/Clip) the activation in place.
pub struct Stage {
    pub epi: Epilogue,
    pub post: Option<FloatAct>,
}

/// Builds the stage for accumulators in units of `in_scale·w_scale[m]` plus a real-valued bias.
pub fn stage(
    out: &QOut,
    act: Option<UnaryOp>,
    in_scale: f32,
    w_scale: &[f32],
    bias: &[f32],
    m: usize,
) -> Result<Stage> {
    let ws = |i: usize| {
        if w_scale.len() == 1 {
            w_scale[0]
        } else {
            w_scale[i]
        }
    };
    let b = |i: usize| bias.get(i).copied().unwrap_or(0.0);
    match (out.dtype, out.q) {
        (DType::F32, None) => {
            let (lo, hi, post) = match act {
                None => (f32::NEG_INFINITY, f32::INFINITY, None),
                Some(UnaryOp::Relu) => (0.0, f32::INFINITY, None),
                Some(UnaryOp::Clip { min, max }) => (min, max, None),
                Some(a) => (
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                    Some(FloatAct::new(Some(a))?),
                ),
            };
            Ok(Stage {
                epi: Epilogue {
                    mult: (0..m).map(|i| in_scale * ws(i)).collect(),
                    add: (0..m).map(b).collect(),
                    kind: OutKind::F32 { lo, hi },
                },
                post,
            })
        }
        (dt, Some(q)) => {
            let kind = int_kind(dt, &q, act)?;
            Ok(Stage {
                epi: Epilogue {
                    mult: (0..m).map(|i| in_scale * ws(i) / q.scale).collect(),
                    add: (0..m).map(|i| b(i) / q.scale).collect(),
                    kind,
                },
                post: None,
            })
        }
        _ => unsupported("an int8 op output without quantization parameters"),
    }
}

/// The clamp of a u8/i8 output with an optional ReLU/Clip folded in.
pub fn int_kind(dt: DType, q: &QScale, act: Option<UnaryOp>) -> Result<OutKind> {
    let zp = q.zero_point as f32;
    let (mut lo, mut hi) = if dt == DType::I8 {
        (-128.0, 127.0)
    } else {
        (0.0, 255.0)
    };
    let quant = |v: f32| (v / q.scale).round_ties_even() + zp;
    match act {
        None => {}
        Some(UnaryOp::Relu) => lo = f32::max(lo, zp),
        Some(UnaryOp::Clip { min, max }) => {
            lo = f32::max(lo, quant(min));
            hi = f32::min(hi, quant(max));
        }
        Some(a) => return unsupported(format!("a quantized output after {a:?}")),
    }
    Ok(OutKind::Int {
        zp,
        lo,
        hi: hi.max(lo),
    })
}

/// A constant's values as i32 minus a per-row zero point (`rows` rows; `zp` of length 1 or
/// `rows`).
pub fn weights_minus_zp(w: &TensorView, rows: usize, zp: &[i32]) -> Vec<i32> {
    let per = w.len() / rows.max(1);
    let z = |r: usize| if zp.len() == 1 { zp[0] } else { zp[r] };
    (0..w.len())
        .map(|i| {
            let v = match w.dtype {
                DType::I8 => w.data[i] as i8 as i32,
                _ => w.data[i] as i32,
            };
            v - z(i / per.max(1))
        })
        .collect()
}

/// The value of a constant input, or an error naming it.
pub fn constant<'a>(
    consts: &'a [Option<TensorView<'a>>],
    i: usize,
    what: &str,
) -> Result<TensorView<'a>> {
    match consts.get(i).copied().flatten() {
        Some(v) => Ok(v),
        None => unsupported(format!("{what} that is not a constant")),
    }
}

//! QAdd: `y = (a − za)·sa + (b − zb)·sb`, requantized (`quant_add_q8`) or f32
//! (`quant_add_f32`), in the u8 domain with the CPU kernel's arithmetic.

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::{byte_suffix, domain, float_clamp, int_clamp};
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{QAdd, QScale};
use crate::ir::Fact;
use crate::tensor::DType;
use crate::{Error, Result};

/// Mirrors `QAddParams` in `kernels/cuda/quant.cu`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C)]
pub(super) struct QAddParams {
    xa: i32,
    xb: i32,
    flip: i32,
    za: f32,
    zb: f32,
    ka: f32,
    kb: f32,
    zp: f32,
    lo: f32,
    hi: f32,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for QAddParams {}

/// The kernel's parameters for these input dtypes, as the CPU kernel derives them.
pub(super) fn params(op: &QAdd, a: DType, b: DType) -> std::result::Result<QAddParams, String> {
    let ((xa, za), (xb, zb)) = (domain(a, &op.a), domain(b, &op.b));
    let mut p = QAddParams {
        xa,
        xb,
        za: za as f32,
        zb: zb as f32,
        ..QAddParams::default()
    };
    match (op.out.dtype, op.out.q) {
        (DType::F32, None) => {
            // The CPU kernel fuses only ReLU and Clip; anything else is left unclamped there,
            // so it is refused here rather than computed differently.
            (p.lo, p.hi) = float_clamp(op.act).map_err(|e| format!("QAdd with {e}"))?;
            (p.ka, p.kb) = (op.a.scale, op.b.scale);
        }
        (dt, Some(q)) if byte_suffix(dt).is_some() => {
            // The output in the u8 domain too: an i8 output is stored xor 0x80.
            let (flip, zp) = domain(dt, &q);
            let u8q = QScale {
                scale: q.scale,
                zero_point: zp,
            };
            (p.lo, p.hi) = int_clamp(DType::U8, &u8q, op.act).map_err(|e| format!("QAdd: {e}"))?;
            (p.flip, p.zp) = (flip, zp as f32);
            (p.ka, p.kb) = (op.a.scale / q.scale, op.b.scale / q.scale);
        }
        _ => return Err(format!("QAdd output {:?}", op.out)),
    }
    Ok(p)
}

pub fn supports(op: &QAdd, inputs: &[Fact], outputs: &[Fact]) -> Support {
    let (a, b) = (inputs[0].dtype, inputs[1].dtype);
    if byte_suffix(a).is_none() || byte_suffix(b).is_none() || outputs[0].dtype != op.out.dtype {
        return Err(format!("QAdd of {a} and {b} to {}", outputs[0].dtype));
    }
    params(op, a, b).map(|_| ())
}

struct QAddKernel {
    f: CudaFunction,
    p: QAddParams,
    n: i64,
}

pub fn build(op: &QAdd, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let p = params(op, b.inputs[0].dtype, b.inputs[1].dtype).map_err(Error::Unsupported)?;
    let name = match op.out.dtype {
        DType::F32 => "quant_add_f32",
        _ => "quant_add_q8",
    };
    Ok(Box::new(QAddKernel {
        f: b.dev.function(name)?,
        p,
        n: b.outputs[0].len() as i64,
    }))
}

impl CudaKernel for QAddKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: (const u8* a, const u8* b, Y* y, i64 n, QAddParams p); a, b and y hold n
        // elements (the op's inputs have one shape).
        unsafe {
            dev.launch(
                &self.f,
                self.n as usize,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.inputs[1]),
                    arg(&io.outputs[0]),
                    arg(&self.n),
                    arg(&self.p),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::check;
    use crate::ir::ops::{QOut, UnaryOp};
    use crate::ir::Op;
    use crate::Tensor;

    fn qadd(out: DType, act: Option<UnaryOp>) -> QAdd {
        QAdd {
            a: QScale {
                scale: 0.03,
                zero_point: 5,
            },
            b: QScale {
                scale: 0.05,
                zero_point: -3,
            },
            act,
            out: QOut {
                dtype: out,
                q: (out != DType::F32).then_some(QScale {
                    scale: 0.04,
                    zero_point: if out == DType::I8 { -10 } else { 120 },
                }),
            },
        }
    }

    #[test]
    fn i8_outputs_work_in_the_u8_domain() {
        let p = params(&qadd(DType::I8, Some(UnaryOp::Relu)), DType::U8, DType::I8).unwrap();
        assert_eq!((p.xa, p.za, p.xb, p.zb), (0, 5.0, 0x80, 125.0));
        assert_eq!((p.flip, p.zp, p.lo, p.hi), (0x80, 118.0, 118.0, 255.0));
        let sig = qadd(DType::F32, Some(UnaryOp::Sigmoid));
        assert!(params(&sig, DType::U8, DType::U8).is_err());
    }

    #[test]
    fn qadd_matches_the_cpu() {
        let bytes = |dtype: DType, seed: usize| {
            let mut t = Tensor::zeros(dtype, &[2, 3, 17]);
            for (i, b) in t.bytes_mut().iter_mut().enumerate() {
                *b = ((i * 89 + seed * 31) % 256) as u8;
            }
            t
        };
        let (a, b) = (bytes(DType::U8, 1), bytes(DType::I8, 2));
        for (out, tol) in [
            (DType::U8, 1.0 / 255.0),
            (DType::I8, 1.0 / 127.0),
            (DType::F32, 1e-6),
        ] {
            let op = Op::QAdd(qadd(out, Some(UnaryOp::Relu)));
            check(&op, &[a.clone(), b.clone()], &[false, false], tol);
        }
    }
}

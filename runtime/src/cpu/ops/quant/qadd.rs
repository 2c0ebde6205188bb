//! CPU kernel for QAdd: `y = (a − za)·sa + (b − zb)·sb`, requantized (or f32), elementwise.

use edgefuse_kernels::qgemm::{quantize_byte, OutKind};

use super::requant::{int_kind, Domain};
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{QAdd, UnaryOp};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

struct QAddKernel {
    a: Domain,
    b: Domain,
    /// Multipliers of `a − za` and `b − zb` (in output units for a quantized output).
    ka: f32,
    kb: f32,
    kind: OutKind,
    /// Byte xor of the output (0x80 for i8).
    out_xor: u8,
}

pub fn build(op: &QAdd, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (fa, fb) = (&b.inputs[0], &b.inputs[1]);
    let (ka, kb, kind, out_xor) = match op.out.q {
        Some(q) => {
            // Work in the u8 domain for the output too: an i8 output is stored xor 0x80.
            let d = Domain::new(op.out.dtype, &q);
            let k = int_kind(
                DType::U8,
                &crate::ir::ops::QScale {
                    scale: q.scale,
                    zero_point: d.zp,
                },
                op.act,
            )?;
            (op.a.scale / q.scale, op.b.scale / q.scale, k, d.xor)
        }
        None => {
            let (lo, hi) = match op.act {
                Some(UnaryOp::Relu) => (0.0, f32::INFINITY),
                Some(UnaryOp::Clip { min, max }) => (min, max),
                _ => (f32::NEG_INFINITY, f32::INFINITY),
            };
            (op.a.scale, op.b.scale, OutKind::F32 { lo, hi }, 0)
        }
    };
    Ok(Box::new(QAddKernel {
        a: Domain::new(fa.dtype, &op.a),
        b: Domain::new(fb.dtype, &op.b),
        ka,
        kb,
        kind,
        out_xor,
    }))
}

impl CpuKernel for QAddKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (a, b) = (inputs[0].data, inputs[1].data);
        let (za, zb) = (self.a.zp as f32, self.b.zp as f32);
        let (xa, xb) = (self.a.xor, self.b.xor);
        let real =
            |i: usize| ((a[i] ^ xa) as f32 - za) * self.ka + ((b[i] ^ xb) as f32 - zb) * self.kb;
        match self.kind {
            OutKind::Int { zp, lo, hi } => {
                for (i, o) in outputs[0].data.iter_mut().enumerate() {
                    *o = quantize_byte(real(i) + zp, lo, hi) ^ self.out_xor;
                }
            }
            OutKind::F32 { lo, hi } => {
                for (i, o) in outputs[0].typed::<f32>().iter_mut().enumerate() {
                    *o = real(i).max(lo).min(hi);
                }
            }
        }
        Ok(())
    }
}

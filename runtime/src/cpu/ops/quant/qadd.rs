//! CPU kernel for QAdd: `y = (a − za)·sa + (b − zb)·sb`, requantized (or f32), elementwise.

use edgefuse_kernels::qgemm::{quantize_byte, OutKind};
use edgefuse_kernels::vmath;
use rayon::prelude::*;

use super::requant::{int_kind, Domain};
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{QAdd, UnaryOp};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

/// Elements from which a byte QAdd splits over the threads (EfficientNet's 24 × 56 × 56 sums
/// and up): below, the fork costs about what the second thread saves.
const PAR_MIN_ELEMS: usize = 32 << 10;

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
        ctx: &Ctx,
    ) -> Result<()> {
        let (a, b) = (inputs[0].data, inputs[1].data);
        let (za, zb) = (self.a.zp as f32, self.b.zp as f32);
        let (xa, xb, ka, kb) = (self.a.xor, self.b.xor, self.ka, self.kb);
        let real = move |x: u8, y: u8| ((x ^ xa) as f32 - za) * ka + ((y ^ xb) as f32 - zb) * kb;
        match self.kind {
            OutKind::Int { zp, lo, hi } => {
                let out_xor = self.out_xor;
                let run = |(o, (a, b)): (&mut [u8], (&[u8], &[u8]))| {
                    vmath::map2_into(a, b, o, move |x, y| {
                        quantize_byte(real(x, y) + zp, lo, hi) ^ out_xor
                    })
                };
                let o = &mut *outputs[0].data;
                let (a, b) = (&a[..o.len()], &b[..o.len()]);
                if ctx.threads > 1 && o.len() >= PAR_MIN_ELEMS {
                    // One run per thread, whole cache lines each.
                    let per = o.len().div_ceil(ctx.threads).next_multiple_of(64);
                    o.par_chunks_mut(per)
                        .zip(a.par_chunks(per).zip(b.par_chunks(per)))
                        .for_each(run);
                } else {
                    run((o, (a, b)));
                }
            }
            OutKind::F32 { lo, hi } => {
                let o = outputs[0].typed::<f32>();
                let (a, b) = (&a[..o.len()], &b[..o.len()]);
                vmath::map2_into(a, b, o, move |x, y| real(x, y).max(lo).min(hi));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ops::eval_threads;
    use crate::ir::ops::{QOut, QScale};
    use crate::ir::Op;
    use crate::Tensor;

    /// Every element against the definition, written out per element as it was before the
    /// kernel ran in lanes and threads: the same bits, for u8, i8 and f32 outputs, with and
    /// without a ReLU, over a tensor large enough to split across threads (with a tail).
    #[test]
    fn qadd_matches_its_definition_in_lanes_and_threads() {
        let n = PAR_MIN_ELEMS + 1000;
        let bytes = |dtype: DType, seed: usize| {
            let mut t = Tensor::zeros(dtype, &[1, 1, n]);
            for (i, b) in t.bytes_mut().iter_mut().enumerate() {
                *b = ((i * 89 + seed * 31 + i / 7) % 256) as u8;
            }
            t
        };
        let (a, b) = (bytes(DType::U8, 1), bytes(DType::I8, 2));
        let (sa, sb) = (0.03f32, 0.05f32);
        for out in [DType::U8, DType::I8, DType::F32] {
            for act in [None, Some(UnaryOp::Relu)] {
                let q = (out != DType::F32).then_some(QScale {
                    scale: 0.04,
                    zero_point: if out == DType::I8 { -10 } else { 120 },
                });
                let op = Op::QAdd(QAdd {
                    a: QScale {
                        scale: sa,
                        zero_point: 5,
                    },
                    b: QScale {
                        scale: sb,
                        zero_point: -3,
                    },
                    act,
                    out: QOut { dtype: out, q },
                });
                let real = |i: usize| {
                    let x = a.bytes()[i] as f32 - 5.0;
                    let y = (b.bytes()[i] as i8) as f32 + 3.0;
                    match q {
                        Some(q) => x * (sa / q.scale) + y * (sb / q.scale),
                        None => x * sa + y * sb,
                    }
                };
                for threads in [1, 2] {
                    let got = eval_threads(&op, &[&a, &b], threads).unwrap().remove(0);
                    for i in 0..n {
                        let want: Vec<u8> = match (out, act) {
                            (DType::F32, None) => real(i).to_le_bytes().to_vec(),
                            (DType::F32, Some(_)) => real(i).max(0.0).to_le_bytes().to_vec(),
                            (DType::U8, _) => {
                                let lo = if act.is_some() { 120.0 } else { 0.0 };
                                vec![quantize_byte(real(i) + 120.0, lo, 255.0)]
                            }
                            _ => {
                                // i8 works in the u8 domain: zero point −10 + 128.
                                let lo = if act.is_some() { 118.0 } else { 0.0 };
                                vec![quantize_byte(real(i) + 118.0, lo, 255.0) ^ 0x80]
                            }
                        };
                        let w = want.len();
                        assert_eq!(
                            &got.bytes()[i * w..(i + 1) * w],
                            &want[..],
                            "{out:?} {act:?} {threads} thread(s) at {i}"
                        );
                    }
                }
            }
        }
    }
}

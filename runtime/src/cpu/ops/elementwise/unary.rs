//! CPU kernel for Unary: one scalar function mapped over a contiguous tensor.
//!
//! f32 for every op (the math lives in `edgefuse_kernels::activation`); Neg, Abs, Relu, Clip and
//! Sign also on i64 and i32; Not on bool; Identity on any dtype (a copy).

use edgefuse_kernels::activation as act;
use edgefuse_kernels::vmath;
use rayon::prelude::*;

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Unary, UnaryOp};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

/// Elements below which the kernel stays on the calling thread.
const PAR_MIN: usize = 1 << 16;
/// Elements per parallel task.
const PAR_CHUNK: usize = 1 << 14;

pub fn build(op: &Unary, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let dtype = b.inputs[0].dtype;
    let ok = match op.op {
        UnaryOp::Identity => true,
        UnaryOp::Not => dtype == DType::Bool,
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Clip { .. } | UnaryOp::Sign => {
            matches!(dtype, DType::F32 | DType::I64 | DType::I32)
        }
        _ => dtype == DType::F32,
    };
    if !ok {
        return unsupported(format!("{:?} on {dtype}", op.op));
    }
    Ok(Box::new(UnaryKernel { op: op.op, dtype }))
}

struct UnaryKernel {
    op: UnaryOp,
    dtype: DType,
}

/// `out[i] = f(x[i])`, split across threads for large tensors.
fn map<A, B, F>(x: &[A], out: &mut [B], threads: usize, f: F)
where
    A: Copy + Sync,
    B: Send,
    F: Fn(A) -> B + Sync,
{
    if threads > 1 && out.len() >= PAR_MIN {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(x.par_chunks(PAR_CHUNK))
            .for_each(|(o, x)| {
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = f(v);
                }
            });
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
    }
}

macro_rules! int_ops {
    ($self:ident, $x:ident, $out:ident, $t:ident, $ty:ty) => {{
        let (x, o) = ($x.typed::<$ty>(), $out.typed::<$ty>());
        match $self.op {
            UnaryOp::Neg => map(x, o, $t, |v: $ty| v.wrapping_neg()),
            UnaryOp::Abs => map(x, o, $t, |v: $ty| v.wrapping_abs()),
            UnaryOp::Relu => map(x, o, $t, |v: $ty| v.max(0)),
            UnaryOp::Sign => map(x, o, $t, |v: $ty| v.signum()),
            UnaryOp::Clip { min, max } => {
                // Float bounds saturate into the integer range (±inf: unbounded).
                let (lo, hi) = (min as $ty, max as $ty);
                map(x, o, $t, move |v: $ty| v.max(lo).min(hi))
            }
            _ => unreachable!("checked at build"),
        }
    }};
}

impl CpuKernel for UnaryKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let (x, out) = (&inputs[0], &mut outputs[0]);
        let t = ctx.threads;
        if self.op == UnaryOp::Identity {
            out.data.copy_from_slice(x.data);
            return Ok(());
        }
        match self.dtype {
            DType::Bool => map(x.data, out.data, t, |v| (v == 0) as u8),
            DType::I64 => int_ops!(self, x, out, t, i64),
            DType::I32 => int_ops!(self, x, out, t, i32),
            _ => self.run_f32(x.typed::<f32>(), out.typed::<f32>(), t),
        }
        Ok(())
    }
}

/// Something that applies a scalar f32 function; [`with_f32_fn`] hands it the op's function.
/// Generic (not a `dyn Fn`), so every loop is monomorphised and stays tight.
pub(crate) trait F32Map {
    fn apply<F: Fn(f32) -> f32 + Sync + Copy>(self, f: F);
}

/// The one table from [`UnaryOp`] to its f32 function, shared by this kernel and the fused
/// Conv/Gemm epilogues. `Identity` is the identity; `Not` has no f32 form (callers refuse it).
/// Sigmoid, Swish and Tanh use the branch-free approximations of [`vmath`] (within 3e-7 and
/// 5e-7 absolute), which LLVM vectorises; libm's are one call per element.
pub(crate) fn with_f32_fn<M: F32Map>(op: UnaryOp, m: M) {
    match op {
        UnaryOp::Identity | UnaryOp::Not => m.apply(|v: f32| v),
        UnaryOp::Relu => m.apply(act::relu),
        UnaryOp::Sigmoid => m.apply(vmath::sigmoid_approx),
        UnaryOp::Tanh => m.apply(vmath::tanh_approx),
        UnaryOp::Sqrt => m.apply(f32::sqrt),
        UnaryOp::Exp => m.apply(f32::exp),
        UnaryOp::Log => m.apply(f32::ln),
        UnaryOp::Neg => m.apply(|v: f32| -v),
        UnaryOp::Abs => m.apply(f32::abs),
        UnaryOp::Reciprocal => m.apply(|v: f32| 1.0 / v),
        UnaryOp::Floor => m.apply(f32::floor),
        UnaryOp::Ceil => m.apply(f32::ceil),
        // ONNX Round: half to even.
        UnaryOp::Round => m.apply(f32::round_ties_even),
        UnaryOp::Erf => m.apply(act::erf),
        UnaryOp::Softplus => m.apply(act::softplus),
        UnaryOp::Swish => m.apply(|v: f32| v * vmath::sigmoid_approx(v)),
        UnaryOp::Mish => m.apply(act::mish),
        UnaryOp::HardSwish => m.apply(act::hard_swish),
        UnaryOp::Gelu => m.apply(act::gelu),
        UnaryOp::Clip { min, max } => m.apply(move |v: f32| v.max(min).min(max)),
        UnaryOp::LeakyRelu { alpha } => m.apply(move |v| act::leaky_relu(v, alpha)),
        UnaryOp::Elu { alpha } => m.apply(move |v| act::elu(v, alpha)),
        UnaryOp::HardSigmoid { alpha, beta } => m.apply(move |v| act::hard_sigmoid(v, alpha, beta)),
        UnaryOp::Sin
        | UnaryOp::Cos
        | UnaryOp::Sign
        | UnaryOp::Softsign
        | UnaryOp::Selu { .. }
        | UnaryOp::Celu { .. }
        | UnaryOp::ThresholdedRelu { .. } => m.apply(move |v| rare(op, v)),
    }
}

/// The ops rare in the networks edgefuse serves, behind one function: one instance of each
/// caller's loop (and its threading) for all of them, not one per op — the device binary
/// carries them for a few KiB. A match per element, which the branch predictor keeps cheap.
#[inline(never)]
fn rare(op: UnaryOp, v: f32) -> f32 {
    match op {
        UnaryOp::Sin => v.sin(),
        UnaryOp::Cos => v.cos(),
        UnaryOp::Sign => act::sign(v),
        UnaryOp::Softsign => act::softsign(v),
        UnaryOp::Selu { alpha, gamma } => act::selu(v, alpha, gamma),
        UnaryOp::Celu { alpha } => act::celu(v, alpha),
        UnaryOp::ThresholdedRelu { alpha } => act::thresholded_relu(v, alpha),
        // `with_f32_fn` sends only the ops above here.
        _ => v,
    }
}

struct MapInto<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
    threads: usize,
}

impl F32Map for MapInto<'_> {
    fn apply<F: Fn(f32) -> f32 + Sync + Copy>(self, f: F) {
        map(self.x, self.out, self.threads, f)
    }
}

impl UnaryKernel {
    fn run_f32(&self, x: &[f32], o: &mut [f32], t: usize) {
        with_f32_fn(
            self.op,
            MapInto {
                x,
                out: o,
                threads: t,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Unary, UnaryOp};
    use crate::{DType, Tensor};

    fn un(op: UnaryOp, x: &Tensor) -> Tensor {
        eval(&Op::Unary(Unary { op }), &[x]).unwrap().remove(0)
    }

    const XS: [f32; 9] = [-20.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 20.0];

    /// Checks `op` on XS against an f64 reference, within `tol` relative (absolute near zero).
    fn check(op: UnaryOp, f: impl Fn(f64) -> f64, tol: f64) {
        let x = Tensor::from_vec(&[XS.len()], XS.to_vec()).unwrap();
        let got = un(op, &x);
        for (&xv, &g) in XS.iter().zip(got.as_slice::<f32>().unwrap()) {
            let want = f(xv as f64);
            let err = (g as f64 - want).abs() / want.abs().max(1e-30);
            assert!(
                g as f64 == want || err <= tol || (g as f64 - want).abs() < 1e-37,
                "{op:?}({xv}) = {g}, want {want} (rel err {err})"
            );
        }
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    #[test]
    fn f32_ops_match_f64_reference() {
        check(UnaryOp::Relu, |x| x.max(0.0), 0.0);
        check(UnaryOp::Sigmoid, sigmoid, 2e-7);
        check(UnaryOp::Tanh, f64::tanh, 2e-7);
        check(UnaryOp::Exp, f64::exp, 2e-7);
        check(UnaryOp::Neg, |x| -x, 0.0);
        check(UnaryOp::Abs, f64::abs, 0.0);
        check(UnaryOp::Reciprocal, |x| 1.0 / x, 1e-7);
        check(UnaryOp::Floor, f64::floor, 0.0);
        check(UnaryOp::Ceil, f64::ceil, 0.0);
        check(UnaryOp::Round, f64::round_ties_even, 0.0);
        check(UnaryOp::Softplus, softplus, 3e-7);
        check(UnaryOp::Swish, |x| x * sigmoid(x), 3e-7);
        check(UnaryOp::Mish, |x| x * softplus(x).tanh(), 5e-7);
        check(
            UnaryOp::HardSwish,
            |x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            1e-7,
        );
        check(
            UnaryOp::Clip {
                min: -1.0,
                max: 2.0,
            },
            |x| x.clamp(-1.0, 2.0),
            0.0,
        );
        check(
            UnaryOp::LeakyRelu { alpha: 0.1 },
            |x| if x >= 0.0 { x } else { 0.1 * x },
            1e-7,
        );
        check(
            UnaryOp::Elu { alpha: 1.5 },
            |x| if x > 0.0 { x } else { 1.5 * x.exp_m1() },
            2e-7,
        );
        check(
            UnaryOp::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            |x| (0.2 * x + 0.5).clamp(0.0, 1.0),
            1e-7,
        );
    }

    #[test]
    fn sigmoid_far_tails() {
        let x = Tensor::from_vec(&[4], vec![-80.0f32, -60.0, 60.0, 100.0]).unwrap();
        let got = un(UnaryOp::Sigmoid, &x);
        let g = got.as_slice::<f32>().unwrap();
        assert!(((g[0] as f64) / (-80f64).exp() - 1.0).abs() < 2e-7);
        assert!(((g[1] as f64) / (-60f64).exp() - 1.0).abs() < 2e-7);
        assert_eq!(&g[2..], &[1.0, 1.0]);
        let got = un(UnaryOp::Tanh, &x);
        assert_eq!(got.as_slice::<f32>().unwrap(), &[-1.0, -1.0, 1.0, 1.0]);
        let got = un(UnaryOp::Exp, &x);
        assert_eq!(got.as_slice::<f32>().unwrap()[3], f32::INFINITY);
    }

    #[test]
    fn sqrt_log_erf_gelu() {
        let x = Tensor::from_vec(&[3], vec![0.25f32, 1.0, 4.0]).unwrap();
        assert_eq!(
            un(UnaryOp::Sqrt, &x).as_slice::<f32>().unwrap(),
            &[0.5, 1.0, 2.0]
        );
        let l = un(UnaryOp::Log, &x);
        assert!((l.as_slice::<f32>().unwrap()[2] - 4f32.ln()).abs() < 1e-7);
        // erf(0.5), erf(1), erf(2) from tables.
        let e = un(
            UnaryOp::Erf,
            &Tensor::from_vec(&[3], vec![0.5f32, 1.0, 2.0]).unwrap(),
        );
        let want = [
            0.520_499_877_813_046_5,
            0.842_700_792_949_714_9,
            0.995_322_265_018_952_7,
        ];
        for (g, w) in e.as_slice::<f32>().unwrap().iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-7, "{g} vs {w}");
        }
        let g = un(
            UnaryOp::Gelu,
            &Tensor::from_vec(&[3], vec![-1.0f32, 0.0, 1.0]).unwrap(),
        );
        let gv = g.as_slice::<f32>().unwrap();
        assert!((gv[0] as f64 - -0.158_655_253_931_457_05).abs() < 1e-7);
        assert_eq!(gv[1], 0.0);
        assert!((gv[2] as f64 - 0.841_344_746_068_542_9).abs() < 1e-7);
    }

    #[test]
    fn integer_and_bool_ops() {
        let x = Tensor::from_vec(&[4], vec![-5i64, -1, 0, 7]).unwrap();
        assert_eq!(
            un(UnaryOp::Neg, &x).as_slice::<i64>().unwrap(),
            &[5, 1, 0, -7]
        );
        assert_eq!(
            un(UnaryOp::Abs, &x).as_slice::<i64>().unwrap(),
            &[5, 1, 0, 7]
        );
        assert_eq!(
            un(UnaryOp::Relu, &x).as_slice::<i64>().unwrap(),
            &[0, 0, 0, 7]
        );
        let x32 = Tensor::from_vec(&[4], vec![-5i32, -1, 0, 7]).unwrap();
        let c = un(
            UnaryOp::Clip {
                min: -2.0,
                max: f32::INFINITY,
            },
            &x32,
        );
        assert_eq!(c.as_slice::<i32>().unwrap(), &[-2, -1, 0, 7]);
        let b = Tensor::from_bytes(DType::Bool, &[3], &[1, 0, 1]).unwrap();
        assert_eq!(un(UnaryOp::Not, &b).bytes(), &[0, 1, 0]);
        let h = Tensor::from_vec(&[2], vec![half::f16::from_f32(1.5), half::f16::ONE]).unwrap();
        assert_eq!(un(UnaryOp::Identity, &h).bytes(), h.bytes());
    }
}

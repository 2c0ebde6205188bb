//! Unary activations: `elementwise_unary_{f32,f16}`. `act_code` is the table shared with the
//! fused epilogues of Conv, Gemm and Binary (`act_apply` in `prelude.cuh`).

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{check_float, float_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{Unary, UnaryOp};
use crate::ir::Fact;
use crate::Result;

/// The activation's code and parameters in `act_apply`, or None when it has no CUDA form.
pub fn act_code(op: UnaryOp) -> Option<(i32, f32, f32)> {
    use UnaryOp::*;
    Some(match op {
        Identity => (0, 0.0, 0.0),
        Relu => (1, 0.0, 0.0),
        Sigmoid => (2, 0.0, 0.0),
        Tanh => (3, 0.0, 0.0),
        Sqrt => (4, 0.0, 0.0),
        Exp => (5, 0.0, 0.0),
        Log => (6, 0.0, 0.0),
        Neg => (7, 0.0, 0.0),
        Abs => (8, 0.0, 0.0),
        Reciprocal => (9, 0.0, 0.0),
        Floor => (10, 0.0, 0.0),
        Ceil => (11, 0.0, 0.0),
        Round => (12, 0.0, 0.0),
        Erf => (13, 0.0, 0.0),
        Softplus => (14, 0.0, 0.0),
        Swish => (15, 0.0, 0.0),
        Mish => (16, 0.0, 0.0),
        HardSwish => (17, 0.0, 0.0),
        Gelu => (18, 0.0, 0.0),
        Clip { min, max } => (19, min, max),
        LeakyRelu { alpha } => (20, alpha, 0.0),
        Elu { alpha } => (21, alpha, 0.0),
        HardSigmoid { alpha, beta } => (22, alpha, beta),
        Not | Sin | Cos | Sign | Softsign | Selu { .. } | Celu { .. } | ThresholdedRelu { .. } => {
            return None
        }
    })
}

/// An optional fused activation as (code, p0, p1); identity when absent.
pub fn epilogue(act: Option<UnaryOp>) -> std::result::Result<(i32, f32, f32), String> {
    match act {
        None => Ok((0, 0.0, 0.0)),
        Some(a) => act_code(a).ok_or_else(|| format!("activation {a:?}")),
    }
}

pub fn supports(op: &Unary, inputs: &[Fact], _outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    act_code(op.op)
        .map(|_| ())
        .ok_or_else(|| format!("{:?}", op.op))
}

struct UnaryKernel {
    f: CudaFunction,
    n: i64,
    code: (i32, f32, f32),
}

pub fn build(op: &Unary, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let s = float_suffix(b.inputs[0].dtype).expect("checked by supports");
    Ok(Box::new(UnaryKernel {
        f: b.dev.function(&format!("elementwise_unary_{s}"))?,
        n: b.inputs[0].len() as i64,
        code: act_code(op.op).expect("checked by supports"),
    }))
}

impl CudaKernel for UnaryKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (op, p0, p1) = self.code;
        // SAFETY: (const T* x, T* y, i64 n, int op, float p0, float p1); x and y hold n elements.
        unsafe {
            dev.launch(
                &self.f,
                self.n as usize,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.outputs[0]),
                    arg(&self.n),
                    arg(&op),
                    arg(&p0),
                    arg(&p1),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{Unary, UnaryOp};
    use crate::ir::Op;

    #[test]
    fn activations_match_the_cpu() {
        let x = values(&[3, 50], 1);
        for op in [
            UnaryOp::Relu,
            UnaryOp::Sigmoid,
            UnaryOp::Tanh,
            UnaryOp::Swish,
            UnaryOp::Gelu,
            UnaryOp::HardSwish,
            UnaryOp::Clip { min: 0.0, max: 0.5 },
            UnaryOp::LeakyRelu { alpha: 0.1 },
        ] {
            check(
                &Op::Unary(Unary { op }),
                std::slice::from_ref(&x),
                &[false],
                1e-6,
            );
        }
    }
}

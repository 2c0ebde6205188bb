//! Cast between f32 and f16: `elementwise_cast_{from}_{to}`, one thread per element. It is the
//! boundary of an fp16 plan (inputs narrowed once at entry, outputs widened once at exit, and
//! the copies around a node that runs in f32), and ONNX `Cast` between those types. Other casts
//! stay on the CPU.

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{float_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Cast;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

/// The kernel name converting `from` into `to`, when both are float types we compute in.
pub fn kernel_name(from: DType, to: DType) -> Option<String> {
    let (f, t) = (float_suffix(from)?, float_suffix(to)?);
    (from != to).then(|| format!("elementwise_cast_{f}_{t}"))
}

pub fn supports(op: &Cast, inputs: &[Fact]) -> Support {
    kernel_name(inputs[0].dtype, op.to)
        .map(|_| ())
        .ok_or_else(|| format!("Cast from {} to {}", inputs[0].dtype, op.to))
}

/// A prepared float cast of `n` elements; other kernels use it too (the LSTM's f32 cell state).
pub struct FloatCast {
    f: CudaFunction,
    n: i64,
}

impl FloatCast {
    pub fn new(dev: &Device, from: DType, to: DType, n: usize) -> Result<FloatCast> {
        let name = kernel_name(from, to)
            .ok_or_else(|| crate::Error::Unsupported(format!("cast from {from} to {to}")))?;
        Ok(FloatCast {
            f: dev.function(&name)?,
            n: n as i64,
        })
    }

    /// Enqueues `y = x` converted; `x` and `y` are device addresses of `n` elements each.
    pub fn run(&self, dev: &Device, x: u64, y: u64) -> Result<()> {
        // SAFETY: (const A* x, B* y, i64 n); the caller passes buffers of `n` elements of the
        // types this cast was built for.
        unsafe {
            dev.launch(
                &self.f,
                self.n as usize,
                &mut [arg(&x), arg(&y), arg(&self.n)],
            )
        }
    }
}

pub fn build(op: &Cast, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    Ok(Box::new(FloatCast::new(b.dev, x.dtype, op.to, x.len())?))
}

impl CudaKernel for FloatCast {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        self.run(dev, io.inputs[0], io.outputs[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::Op;

    #[test]
    fn only_float_pairs_have_a_kernel() {
        assert_eq!(
            kernel_name(DType::F32, DType::F16).as_deref(),
            Some("elementwise_cast_f32_f16")
        );
        assert_eq!(
            kernel_name(DType::F16, DType::F32).as_deref(),
            Some("elementwise_cast_f16_f32")
        );
        assert_eq!(kernel_name(DType::F32, DType::F32), None);
        assert_eq!(kernel_name(DType::F32, DType::I64), None);
        let x = [Fact::new(DType::I64, vec![3])];
        assert!(supports(&Cast { to: DType::F32 }, &x).is_err());
    }

    #[test]
    fn casts_match_the_cpu() {
        let x = values(&[7, 33], 1);
        let half = crate::cpu::ops::eval(&Op::Cast(Cast { to: DType::F16 }), &[&x])
            .unwrap()
            .remove(0);
        check(&Op::Cast(Cast { to: DType::F16 }), &[x], &[false], 0.0);
        check(&Op::Cast(Cast { to: DType::F32 }), &[half], &[false], 0.0);
    }
}

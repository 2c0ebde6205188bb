//! DequantizeLinear: u8 / i8 / i32 → f32 (`quant_dequantize_{u8,i8,i32}`).

use cudarc::driver::CudaFunction;

use super::layout;
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::DequantizeLinear;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    let ok = matches!(inputs[0].dtype, DType::U8 | DType::I8 | DType::I32)
        && inputs[1].dtype == DType::F32
        && inputs.get(2).is_none_or(|z| z.dtype == inputs[0].dtype);
    if ok {
        Ok(())
    } else {
        Err(format!("DequantizeLinear of {}", inputs[0].dtype))
    }
}

struct DequantizeKernel {
    f: CudaFunction,
    n: i64,
    inner: i64,
    channels: i64,
}

pub fn build(op: &DequantizeLinear, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    let (inner, channels) = layout(x, op.axis);
    Ok(Box::new(DequantizeKernel {
        f: b.dev
            .function(&format!("quant_dequantize_{}", x.dtype.name()))?,
        n: x.len() as i64,
        inner,
        channels,
    }))
}

impl CudaKernel for DequantizeKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let zp = io.inputs.get(2).copied().unwrap_or(0);
        // SAFETY: (const Q* x, const float* scale, const Q* zp, float* y, i64 n, i64 inner,
        // i64 channels); scale and zp (or null) hold `channels` values (the op's `infer`).
        unsafe {
            dev.launch(
                &self.f,
                self.n as usize,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.inputs[1]),
                    arg(&zp),
                    arg(&io.outputs[0]),
                    arg(&self.n),
                    arg(&self.inner),
                    arg(&self.channels),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{DequantizeLinear, Op};
    use crate::Tensor;

    #[test]
    fn dequantize_matches_the_cpu() {
        let x = Tensor::from_vec(&[2, 3], vec![0i8, -5, 127, -128, 3, 9]).unwrap();
        let s = values(&[1], 2);
        let z = Tensor::from_vec(&[1], vec![-3i8]).unwrap();
        let op = Op::DequantizeLinear(DequantizeLinear { axis: None });
        check(&op, &[x, s, z], &[false, true, true], 0.0);
    }
}

//! QuantizeLinear: f32 → u8 / i8 (`quant_quantize_{u8,i8}`), as the CPU kernel computes it.

use cudarc::driver::CudaFunction;

use super::layout;
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::QuantizeLinear;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

pub fn supports(op: &QuantizeLinear, inputs: &[Fact]) -> Support {
    let ok = inputs[0].dtype == DType::F32
        && inputs[1].dtype == DType::F32
        && matches!(op.to, DType::U8 | DType::I8)
        && inputs.get(2).is_none_or(|z| z.dtype == op.to);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "QuantizeLinear of {} to {}",
            inputs[0].dtype, op.to
        ))
    }
}

struct QuantizeKernel {
    f: CudaFunction,
    n: i64,
    inner: i64,
    channels: i64,
    range: (f32, f32),
}

pub fn build(op: &QuantizeLinear, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    let (inner, channels) = layout(x, op.axis);
    let (name, range) = if op.to == DType::I8 {
        ("i8", (-128.0, 127.0))
    } else {
        ("u8", (0.0, 255.0))
    };
    Ok(Box::new(QuantizeKernel {
        f: b.dev.function(&format!("quant_quantize_{name}"))?,
        n: x.len() as i64,
        inner,
        channels,
        range,
    }))
}

impl CudaKernel for QuantizeKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let zp = io.inputs.get(2).copied().unwrap_or(0);
        let (lo, hi) = self.range;
        // SAFETY: (const float* x, const float* scale, const Q* zp, Q* y, i64 n, i64 inner,
        // i64 channels, float lo, float hi); scale and zp (or null) hold `channels` values
        // (the op's `infer`).
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
                    arg(&lo),
                    arg(&hi),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{Op, QuantizeLinear};
    use crate::{DType, Tensor};

    #[test]
    fn quantize_matches_the_cpu() {
        let x = values(&[2, 3, 4], 1);
        let s = Tensor::from_vec(&[3], vec![0.01f32, 0.02, 0.05]).unwrap();
        let z = Tensor::from_vec(&[3], vec![128u8, 100, 3]).unwrap();
        let op = Op::QuantizeLinear(QuantizeLinear {
            axis: Some(1),
            to: DType::U8,
        });
        check(&op, &[x, s, z], &[false, true, true], 0.0);
    }
}

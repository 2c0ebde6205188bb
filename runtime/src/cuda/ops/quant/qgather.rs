//! QGather (rows of an i8 embedding table times their row scale) on the GPU:
//! `quant_gather{,_i32}`, the CPU kernel's `q·scale[r]` per value, f32 out (an fp16 plan casts
//! it after: the op has no float input to narrow). The scales are uploaded at build; the table
//! stays i8 on the device. An index out of range writes zeros, as Gather does: a CUDA graph
//! cannot return an error per element, and the CPU backend (which reports it) is the
//! reference.

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device, DeviceBuffer};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::QGather;
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

pub fn supports(inputs: &[Fact], outputs: &[Fact]) -> Support {
    let (x, idx, y) = (&inputs[0], &inputs[1], &outputs[0]);
    if x.dtype != DType::I8 || x.rank() < 1 || !matches!(idx.dtype, DType::I64 | DType::I32) {
        return Err(format!("QGather of {} by {} indices", x.dtype, idx.dtype));
    }
    match y.dtype {
        DType::F32 => Ok(()),
        d => Err(format!("QGather to {d}")),
    }
}

struct QGatherKernel {
    f: CudaFunction,
    scale: DeviceBuffer,
    n_idx: i64,
    rows: i64,
    row: i64,
}

pub fn build(op: &QGather, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, idx) = (&b.inputs[0], &b.inputs[1]);
    let kind = if idx.dtype == DType::I32 { "_i32" } else { "" };
    let scale: Vec<u8> = op.scale.iter().flat_map(|s| s.to_le_bytes()).collect();
    Ok(Box::new(QGatherKernel {
        f: b.dev.function(&format!("quant_gather{kind}"))?,
        scale: DeviceBuffer::from_bytes(b.dev, &scale)?,
        n_idx: idx.len() as i64,
        rows: x.shape[0] as i64,
        row: x.shape[1..].iter().product::<usize>() as i64,
    }))
}

impl CudaKernel for QGatherKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: (const signed char* x, const float* scale, const I* idx, float* y, i64 n_idx,
        // i64 rows, i64 row); x holds rows·row bytes, scale `rows` floats (the op's `infer`),
        // y n_idx·row values; indices are range-checked in the kernel.
        unsafe {
            dev.launch(
                &self.f,
                (self.n_idx * self.row) as usize,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&self.scale.ptr),
                    arg(&io.inputs[1]),
                    arg(&io.outputs[0]),
                    arg(&self.n_idx),
                    arg(&self.rows),
                    arg(&self.row),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::check;
    use crate::ir::ops::{Op, QGather};
    use crate::tensor::DType;
    use crate::Tensor;

    /// i64 and i32 indices, negative ones among them: the CPU's values exactly.
    #[test]
    fn qgather_matches_the_cpu() {
        let mut table = Tensor::zeros(DType::I8, &[7, 2, 3]);
        for (i, b) in table.bytes_mut().iter_mut().enumerate() {
            *b = (i * 37 % 256) as u8;
        }
        let op = Op::QGather(QGather {
            scale: (0..7).map(|r| 0.01 + r as f32 * 0.003).collect(),
        });
        let i64s = Tensor::from_vec(&[2, 2], vec![0i64, 6, -1, 3]).unwrap();
        let i32s = Tensor::from_vec(&[3], vec![2i32, -7, 5]).unwrap();
        for idx in [i64s, i32s] {
            check(&op, &[table.clone(), idx], &[true, false], 0.0);
        }
    }
}

//! Pad (constant, reflect, edge): `shape_pad_*`, one thread per output element.

use cudarc::driver::CudaFunction;

use super::supports_ranks;
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{size_suffix, BuildCtx, CudaKernel, Dims, Io, Support};
use crate::ir::ops::{Pad, PadMode};
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

pub fn supports(inputs: &[Fact]) -> Support {
    supports_ranks(inputs)
}

struct PadKernel {
    f: CudaFunction,
    n: i64,
    rank: i32,
    od: Dims,
    xd: Dims,
    begin: Dims,
    mode: i32,
    /// The constant's bits in the element type, low bytes first.
    value: u64,
}

/// The pad value as the element type's bits.
fn bits(dtype: DType, v: f32) -> u64 {
    match dtype {
        DType::F32 => v.to_bits() as u64,
        DType::F16 => half::f16::from_f32(v).to_bits() as u64,
        DType::I64 => v as i64 as u64,
        DType::I32 => v as i32 as u32 as u64,
        DType::I8 => v as i8 as u8 as u64,
        DType::U8 | DType::Bool => v as u8 as u64,
    }
}

pub fn build(op: &Pad, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let r = x.rank();
    Ok(Box::new(PadKernel {
        f: b.dev
            .function(&format!("shape_pad_{}", size_suffix(x.dtype)))?,
        n: y.len() as i64,
        rank: r as i32,
        od: Dims::from(y.shape.iter().map(|&d| d as i64)),
        xd: Dims::from(x.shape.iter().map(|&d| d as i64)),
        begin: Dims::from(op.pads[..r].iter().map(|&d| d as i64)),
        mode: match op.mode {
            PadMode::Constant => 0,
            PadMode::Reflect => 1,
            PadMode::Edge => 2,
        },
        value: bits(x.dtype, op.value),
    }))
}

impl CudaKernel for PadKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        // SAFETY: (const T* x, T* y, i64 n, int rank, Dims od, Dims xd, Dims begin, int mode,
        // T value); the driver copies sizeof(T) bytes of `value` (little-endian low bytes).
        unsafe {
            dev.launch(
                &self.f,
                self.n as usize,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.outputs[0]),
                    arg(&self.n),
                    arg(&self.rank),
                    arg(&self.od),
                    arg(&self.xd),
                    arg(&self.begin),
                    arg(&self.mode),
                    arg(&self.value),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{Pad, PadMode};
    use crate::ir::Op;

    #[test]
    fn pads_match_the_cpu() {
        for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge] {
            let op = Op::Pad(Pad {
                pads: vec![0, 1, 2, 0, 2, 1],
                mode,
                value: 0.5,
            });
            check(&op, &[values(&[2, 3, 4], 1)], &[false], 0.0);
        }
    }
}

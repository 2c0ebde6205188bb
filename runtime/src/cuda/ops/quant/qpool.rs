//! QPool (int8 MaxPool / AveragePool, GlobalAveragePool as a whole-plane window):
//! `quant_pool_q8`, one thread per output, in the u8 domain with the arithmetic of the CPU
//! kernel's general loop (its table and global-average paths compute the same values).

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::{byte_suffix, domain};
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::nn::pool::window;
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{PoolKind, QPool};
use crate::ir::Fact;
use crate::Result;

/// Mirrors `QPoolParams` in `kernels/cuda/quant.cu`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct QPoolParams {
    planes: i64,
    ih: i64,
    iw: i64,
    oh: i64,
    ow: i64,
    kh: i64,
    kw: i64,
    sh: i64,
    sw: i64,
    dh: i64,
    dw: i64,
    pt: i64,
    pl: i64,
    pb: i64,
    pr: i64,
    is_max: i32,
    count_include_pad: i32,
    xor_in: i32,
    zx: i32,
    zp_out: i32,
    flip: i32,
    ratio: f32,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for QPoolParams {}

pub fn supports(op: &QPool, inputs: &[Fact], outputs: &[Fact]) -> Support {
    let (x, y) = (&inputs[0], &outputs[0]);
    if byte_suffix(x.dtype).is_none() || y.dtype != x.dtype {
        return Err(format!("QPool of {} to {}", x.dtype, y.dtype));
    }
    window(&op.pool, x, y)
        .map(|_| ())
        .ok_or_else(|| format!("QPool over {} axes", op.pool.kernel.len()))
}

struct QPoolKernel {
    f: CudaFunction,
    p: QPoolParams,
}

pub fn build(op: &QPool, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let g = window(&op.pool, x, y).expect("checked by supports");
    let (xor_in, zx) = domain(x.dtype, &op.x);
    let (flip, zp_out) = domain(y.dtype, &op.out);
    let i = |v: usize| v as i64;
    Ok(Box::new(QPoolKernel {
        f: b.dev.function("quant_pool_q8")?,
        p: QPoolParams {
            planes: i(x.shape[0] * x.shape[1]),
            ih: i(g.ih),
            iw: i(g.iw),
            oh: i(g.oh),
            ow: i(g.ow),
            kh: i(g.kh),
            kw: i(g.kw),
            sh: i(g.sh),
            sw: i(g.sw),
            dh: i(g.dh),
            dw: i(g.dw),
            pt: i(g.pt),
            pl: i(g.pl),
            pb: i(g.pb),
            pr: i(g.pr),
            is_max: (op.pool.kind == PoolKind::Max) as i32,
            count_include_pad: op.pool.count_include_pad as i32,
            xor_in,
            zx,
            zp_out,
            flip,
            ratio: op.x.scale / op.out.scale,
        },
    }))
}

impl CudaKernel for QPoolKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let n = (self.p.planes * self.p.oh * self.p.ow) as usize;
        // SAFETY: (const u8* x, u8* y, QPoolParams p); x holds planes·ih·iw bytes, y
        // planes·oh·ow.
        unsafe {
            dev.launch(
                &self.f,
                n,
                &mut [arg(&io.inputs[0]), arg(&io.outputs[0]), arg(&self.p)],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::check;
    use crate::ir::ops::{Pool, PoolKind, QPool, QScale};
    use crate::ir::Op;
    use crate::tensor::DType;
    use crate::Tensor;

    #[test]
    fn qpools_match_the_cpu() {
        for dtype in [DType::U8, DType::I8] {
            let mut x = Tensor::zeros(dtype, &[1, 3, 7, 7]);
            for (i, b) in x.bytes_mut().iter_mut().enumerate() {
                *b = (i * 97 % 256) as u8;
            }
            for (kind, kernel, strides, pads, cip) in [
                (PoolKind::Max, [3, 3], [2, 2], [1, 1, 1, 1], false),
                (PoolKind::Avg, [3, 3], [2, 2], [1, 1, 1, 1], true),
                (PoolKind::Avg, [3, 3], [2, 2], [0, 1, 2, 0], false),
                (PoolKind::Avg, [7, 7], [1, 1], [0, 0, 0, 0], false),
            ] {
                let op = Op::QPool(QPool {
                    pool: Pool {
                        kind,
                        kernel: kernel.to_vec(),
                        strides: strides.to_vec(),
                        pads: pads.to_vec(),
                        dilations: vec![1, 1],
                        ceil_mode: false,
                        count_include_pad: cip,
                    },
                    x: QScale {
                        scale: 0.05,
                        zero_point: 3,
                    },
                    out: QScale {
                        scale: 0.07,
                        zero_point: if dtype == DType::I8 { -5 } else { 130 },
                    },
                });
                // Bit-exact: the same integer sums and f32 operations as the CPU.
                check(&op, &[x.clone()], &[false], 0.0);
            }
        }
    }
}

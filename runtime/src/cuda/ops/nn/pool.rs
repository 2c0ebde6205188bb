//! MaxPool / AveragePool (1-D and 2-D): `nn_pool_{max,avg}_{f32,f16}`, one thread per output,
//! with the CPU's window geometry (`edgefuse_kernels::conv::Window2d`) and clipping rules.

use cudarc::driver::{CudaFunction, DeviceRepr};
use edgefuse_kernels::conv::Window2d;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{check_float, float_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{Pool, PoolKind};
use crate::ir::Fact;
use crate::Result;

/// `PoolParams` in `kernels/cuda/nn.cu`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct PoolParams {
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
    count_include_pad: i64,
}

// SAFETY: plain repr(C) integers, the layout of the CUDA struct.
unsafe impl DeviceRepr for PoolParams {}

pub(crate) fn window(op: &Pool, x: &Fact, y: &Fact) -> Option<Window2d> {
    Window2d::from_axes(
        &x.shape[2..],
        &op.kernel,
        &op.strides,
        &op.dilations,
        &op.pads,
        &y.shape[2..],
    )
}

pub fn supports(op: &Pool, inputs: &[Fact], outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    window(op, &inputs[0], &outputs[0])
        .map(|_| ())
        .ok_or_else(|| format!("pooling over {} axes", op.kernel.len()))
}

struct PoolKernel {
    f: CudaFunction,
    p: PoolParams,
}

pub fn build(op: &Pool, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let g = window(op, x, y).expect("checked by supports");
    let kind = if op.kind == PoolKind::Max {
        "max"
    } else {
        "avg"
    };
    let i = |v: usize| v as i64;
    Ok(Box::new(PoolKernel {
        f: b.dev.function(&format!(
            "nn_pool_{kind}_{}",
            float_suffix(x.dtype).unwrap()
        ))?,
        p: PoolParams {
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
            count_include_pad: op.count_include_pad as i64,
        },
    }))
}

impl CudaKernel for PoolKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let n = (self.p.planes * self.p.oh * self.p.ow) as usize;
        // SAFETY: (const T* x, T* y, PoolParams p); x holds planes·ih·iw, y planes·oh·ow.
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
    use crate::cuda::ops::testing::{check, check_f16, values};
    use crate::ir::ops::{Pool, PoolKind};
    use crate::ir::Op;

    #[test]
    fn pools_match_the_cpu() {
        let x = values(&[1, 3, 9, 9], 1);
        for (kind, pads, cip) in [
            (PoolKind::Max, vec![0, 0, 0, 0], false),
            (PoolKind::Avg, vec![1, 1, 1, 1], false),
            (PoolKind::Avg, vec![1, 1, 1, 1], true),
        ] {
            let op = Op::Pool(Pool {
                kind,
                kernel: vec![3, 3],
                strides: vec![2, 2],
                pads,
                dilations: vec![1, 1],
                ceil_mode: false,
                count_include_pad: cip,
            });
            check(&op, std::slice::from_ref(&x), &[false], 1e-6);
            check_f16(&op, std::slice::from_ref(&x), &[false], 1e-2);
        }
    }
}

//! GlobalAveragePool / GlobalMaxPool: `nn_global_pool_{avg,max}_{f32,f16}`, one warp per plane,
//! applying its input's writer's bias and activation as it loads when they moved here
//! (`cuda::fuse::Prologue`).

use cudarc::driver::{CudaFunction, DeviceRepr};

use super::conv_direct::{in_mode, in_params};

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{check_float, float_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{GlobalPool, PoolKind};
use crate::ir::Fact;
use crate::Result;

pub fn supports(_op: &GlobalPool, inputs: &[Fact], _outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    if inputs[0].rank() < 2 {
        return Err("global pooling of a rank < 2 tensor".into());
    }
    // One warp per plane, in at most 65535 blocks of 256 threads (no grid-stride loop).
    if inputs[0].shape[0] * inputs[0].shape[1] > 65_535 * 8 {
        return Err("global pooling over more than 524280 planes".into());
    }
    Ok(())
}

/// Mirrors `InAct` in `kernels/cuda/nn.cu`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct InAct {
    channels: i64,
    on: i32,
    act: i32,
    p0: f32,
    p1: f32,
}

// SAFETY: plain `repr(C)` numbers, the layout of the CUDA struct.
unsafe impl DeviceRepr for InAct {}

struct GlobalPoolKernel {
    f: CudaFunction,
    planes: i64,
    len: i64,
    input: InAct,
    /// Input index of the writer's bias.
    in_bias: Option<usize>,
}

pub fn build(op: &GlobalPool, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    let kind = if op.kind == PoolKind::Max {
        "max"
    } else {
        "avg"
    };
    let input = match b.prologue {
        Some(p) => {
            let (act, p0, p1) = in_params(p.act).map_err(crate::Error::Unsupported)?;
            InAct {
                channels: x.shape[1].max(1) as i64,
                on: in_mode(p.act),
                act,
                p0,
                p1,
            }
        }
        None => InAct {
            channels: 1,
            ..InAct::default()
        },
    };
    Ok(Box::new(GlobalPoolKernel {
        f: b.dev.function(&format!(
            "nn_global_pool_{kind}_{}",
            float_suffix(x.dtype).unwrap()
        ))?,
        planes: (x.shape[0] * x.shape[1]) as i64,
        len: x.shape[2..].iter().product::<usize>() as i64,
        input,
        in_bias: b.prologue.filter(|p| p.bias).map(|_| b.inputs.len() - 1),
    }))
}

impl CudaKernel for GlobalPoolKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let in_bias = self.in_bias.map_or(0, |r| io.inputs[r]);
        // SAFETY: (const T* x, T* y, i64 planes, i64 len, InAct in, const T* in_bias); one warp
        // (32 threads) per plane; in_bias (or null) holds `channels` values.
        unsafe {
            dev.launch(
                &self.f,
                self.planes as usize * 32,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.outputs[0]),
                    arg(&self.planes),
                    arg(&self.len),
                    arg(&self.input),
                    arg(&in_bias),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{GlobalPool, PoolKind};
    use crate::ir::Op;

    #[test]
    fn global_pools_match_the_cpu() {
        for kind in [PoolKind::Avg, PoolKind::Max] {
            check(
                &Op::GlobalPool(GlobalPool { kind }),
                &[values(&[2, 5, 7, 7], 1)],
                &[false],
                1e-5,
            );
        }
    }
}

//! DynamicQuantizeLinear on the GPU (`quant_dyn_range`, then `quant_dyn_quantize`): X's range
//! folded on the device, the scale and zero point computed there as the CPU's
//! `qrnn::dynamic_params` does, and X quantized as the CPU's DynamicQuantizeLinear does, so the
//! bytes, scale and zero point are the CPU's (and onnxruntime's). DynamicQuantizeConv and
//! DynamicQuantizeMatMul run a QConv over X quantized the same way into scratch ([`Quantized`]),
//! its parameters read from device memory: nothing comes back to the host, so the whole run
//! stays in the session's CUDA graph.

use cudarc::driver::CudaFunction;

use super::qconv::QConvKernel;
use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{Conv, QConv, QOut, QScale};
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

/// Threads per block of both kernels (`DYN_THREADS` in `kernels/cuda/quant.cu`); also the most
/// blocks the range kernel runs, since the quantize kernel folds one part per thread.
const THREADS: usize = 256;

/// Bytes of scratch for the parts: (min, max) per range block.
const PARTS_BYTES: usize = THREADS * 2 * 4;

/// Bytes of a `DynQ` (f32 scale, i32 zero point), rounded to the scratch's alignment.
const DYNQ_BYTES: usize = 64;

// One (min, max) per range block, and the `DynQ` after the parts on the scratch's alignment.
const _: () = assert!(PARTS_BYTES >= THREADS * 8 && PARTS_BYTES.is_multiple_of(64));

/// The two launches that quantize `n` f32 values per run.
struct DynQuantize {
    range: CudaFunction,
    quantize: CudaFunction,
    n: i64,
    /// Blocks of the range kernel: one per 4096 values (16 a thread), at most [`THREADS`].
    blocks: usize,
}

impl DynQuantize {
    fn new(dev: &Device, n: usize) -> Result<DynQuantize> {
        Ok(DynQuantize {
            range: dev.function("quant_dyn_range")?,
            quantize: dev.function("quant_dyn_quantize")?,
            n: n as i64,
            blocks: blocks_for(n),
        })
    }

    /// Enqueues both kernels: `x` (n f32) into the bytes at `y`, the parts in `parts`
    /// ([`PARTS_BYTES`]), and the parameters where given (0 for none): `dynq` a `DynQ`, `scale`
    /// an f32, `zero_point` a byte.
    fn launch(&self, dev: &Device, x: u64, parts: u64, y: u64, out: Params) -> Result<()> {
        let blocks = self.blocks as i32;
        // SAFETY: (const float* x, i64 n, float* parts); x holds n floats, parts 2·blocks.
        unsafe {
            dev.launch_grid(
                &self.range,
                self.blocks as u32,
                THREADS as u32,
                &mut [arg(&x), arg(&self.n), arg(&parts)],
            )?;
        }
        // SAFETY: (const float* x, i64 n, const float* parts, int blocks, unsigned char* y,
        // DynQ* dq, float* scale_out, unsigned char* zp_out); y holds n bytes, the outputs
        // are null or hold one value each. Blocks of THREADS threads (the kernel folds one
        // part per thread, and blocks ≤ THREADS).
        unsafe {
            dev.launch_grid(
                &self.quantize,
                quantize_grid(self.n as usize),
                THREADS as u32,
                &mut [
                    arg(&x),
                    arg(&self.n),
                    arg(&parts),
                    arg(&blocks),
                    arg(&y),
                    arg(&out.dynq),
                    arg(&out.scale),
                    arg(&out.zero_point),
                ],
            )
        }
    }
}

/// Where the quantize kernel stores the run's parameters (device addresses; 0 for none).
#[derive(Debug, Clone, Copy, Default)]
struct Params {
    dynq: u64,
    scale: u64,
    zero_point: u64,
}

/// The QConv that runs over X's bytes: X's scale 1 and zero point 0 (the kernels take the
/// run's from the `DynQ`), so its `mult` is the weight scale alone; f32 out.
pub(super) fn over_quantized(conv: Conv, w_scale: &[f32], w_zero_point: &[i32]) -> QConv {
    QConv {
        conv,
        x: QScale {
            scale: 1.0,
            zero_point: 0,
        },
        w_scale: w_scale.to_vec(),
        w_zero_point: w_zero_point.to_vec(),
        out: QOut {
            dtype: DType::F32,
            q: None,
        },
    }
}

/// A QConv over X quantized on the device each run (DynamicQuantizeConv, and
/// DynamicQuantizeMatMul as a 1×1 one): the two launches into scratch, then the convolution
/// of those bytes, which reads the run's zero point and scale from the `DynQ` they left.
/// Scratch: the range's parts, the `DynQ`, X's bytes, then the convolution's own.
pub(super) struct Quantized {
    q: DynQuantize,
    conv: QConvKernel,
    /// Scratch for X's bytes, rounded up to 256.
    xq_bytes: usize,
}

impl Quantized {
    /// `conv`, built for u8 X, run over the `n` values of X quantized per run.
    pub(super) fn new(dev: &Device, n: usize, conv: QConvKernel) -> Result<Quantized> {
        Ok(Quantized {
            q: DynQuantize::new(dev, n)?,
            conv,
            xq_bytes: n.next_multiple_of(256),
        })
    }
}

impl CudaKernel for Quantized {
    fn scratch_bytes(&self) -> usize {
        PARTS_BYTES + DYNQ_BYTES + self.xq_bytes + self.conv.scratch_bytes()
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let dynq = io.scratch + PARTS_BYTES as u64;
        let xq = dynq + DYNQ_BYTES as u64;
        let rest = xq + self.xq_bytes as u64;
        let out = Params {
            dynq,
            ..Params::default()
        };
        self.q.launch(dev, io.inputs[0], io.scratch, xq, out)?;
        self.conv.launch_on(dev, xq, io.outputs[0], rest, dynq)
    }
}

/// Blocks of the range kernel for `n` values: one per 4096, at least one, at most [`THREADS`].
fn blocks_for(n: usize) -> usize {
    n.div_ceil(4096).clamp(1, THREADS)
}

/// Blocks of the quantize kernel: one per 1024 values (grid-stride beyond), at most 65,535.
fn quantize_grid(n: usize) -> u32 {
    n.div_ceil(1024).clamp(1, 65_535) as u32
}

pub fn supports(inputs: &[Fact]) -> Support {
    match inputs[0].dtype {
        DType::F32 => Ok(()),
        d => Err(format!("DynamicQuantizeLinear of {d}")),
    }
}

struct DynamicQuantizeKernel {
    q: DynQuantize,
}

pub fn build(b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    Ok(Box::new(DynamicQuantizeKernel {
        q: DynQuantize::new(b.dev, b.inputs[0].len())?,
    }))
}

impl CudaKernel for DynamicQuantizeKernel {
    fn scratch_bytes(&self) -> usize {
        PARTS_BYTES
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let out = Params {
            dynq: 0,
            scale: io.outputs[1],
            zero_point: io.outputs[2],
        };
        self.q
            .launch(dev, io.inputs[0], io.scratch, io.outputs[0], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::check;
    use crate::ir::ops::{DynamicQuantizeLinear, Op};
    use crate::Tensor;

    #[test]
    fn blocks_cover_the_input_and_fit_one_part_per_thread() {
        assert_eq!(blocks_for(0), 1);
        assert_eq!(blocks_for(4096), 1);
        assert_eq!(blocks_for(4097), 2);
        assert_eq!(blocks_for(3 * 224 * 224), 37);
        assert_eq!(blocks_for(1 << 30), THREADS);
        assert_eq!(quantize_grid(1), 1);
        assert_eq!(quantize_grid(1 << 40), 65_535);
    }

    /// Bytes, scale and zero point equal the CPU's: a range across zero over several range
    /// blocks, an all-positive one (zero point 0), an all-zero one (scale 1), and NaNs, which
    /// neither side lets into the range and both quantize to 0.
    #[test]
    fn dynamic_quantize_matches_the_cpu() {
        let op = Op::DynamicQuantizeLinear(DynamicQuantizeLinear {});
        let n = 3 * 4096 + 77;
        let wave: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 1001) as f32 - 400.0) * 0.0123)
            .collect();
        let positive: Vec<f32> = (0..999).map(|i| i as f32 * 0.5 + 0.25).collect();
        let mut nan = wave[..300].to_vec();
        nan[5] = f32::NAN;
        nan[299] = f32::NAN;
        for x in [wave, positive, vec![0.0; 64], nan] {
            let len = x.len();
            let t = Tensor::from_vec(&[len], x).unwrap();
            check(&op, &[t], &[false], 0.0);
        }
    }
}

//! DynamicQuantizeConv on the GPU: X quantized into scratch as DynamicQuantizeLinear does
//! (`dynamic_quantize::DynQuantize`, the run's scale and zero point left in device memory),
//! then QConv's kernels over those bytes (`qconv::QConvKernel::launch_on`), which read the zero
//! point from there and multiply each channel's weight scale by the run's X scale. The integer
//! sums are exact and the epilogue is `acc·(sx·w_scale[m]) + B[m]` in the CPU's f32 steps, so
//! the outputs are the CPU's (and onnxruntime's). Depthwise layers take QConv's per-output
//! kernel; the CPU convolves them in f32 over `q − zx`, whose sums are the same integers.

use super::dynamic_quantize::{DynQuantize, Params, DYNQ_BYTES, PARTS_BYTES};
use super::qconv::{self, QConvKernel};
use crate::cuda::device::Device;
use crate::cuda::ops::{BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{DynamicQuantizeConv, QConv, QOut, QScale};
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

/// The QConv the quantized bytes go through: X's scale 1 and zero point 0 (the kernel takes
/// the run's from device memory), so its `mult` is the weight scale alone; f32 out.
pub(super) fn as_qconv(op: &DynamicQuantizeConv) -> QConv {
    QConv {
        conv: op.conv.clone(),
        x: QScale {
            scale: 1.0,
            zero_point: 0,
        },
        w_scale: op.w_scale.clone(),
        w_zero_point: op.w_zero_point.clone(),
        out: QOut {
            dtype: DType::F32,
            q: None,
        },
    }
}

/// The facts with X as the bytes it becomes.
fn byte_facts(inputs: &[Fact]) -> Vec<Fact> {
    let mut f = inputs.to_vec();
    f[0].dtype = DType::U8;
    f
}

pub fn supports(op: &DynamicQuantizeConv, inputs: &[Fact], outputs: &[Fact]) -> Support {
    if inputs[0].dtype != DType::F32 {
        return Err(format!("DynamicQuantizeConv of {}", inputs[0].dtype));
    }
    qconv::supports(&as_qconv(op), &byte_facts(inputs), outputs)
        .map_err(|e| e.replace("QConv", "DynamicQuantizeConv"))
}

struct DynamicConvKernel {
    q: DynQuantize,
    conv: QConvKernel,
    /// Scratch for X's bytes, rounded up to 256.
    xq_bytes: usize,
}

pub fn build(op: &DynamicQuantizeConv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let facts = byte_facts(b.inputs);
    let conv = qconv::build_kernel(
        &as_qconv(op),
        &BuildCtx {
            dev: b.dev,
            inputs: &facts,
            outputs: b.outputs,
            consts: b.consts,
        },
    )?;
    let n = b.inputs[0].len();
    Ok(Box::new(DynamicConvKernel {
        q: DynQuantize::new(b.dev, n)?,
        conv,
        xq_bytes: n.next_multiple_of(256),
    }))
}

/// Scratch: the range's parts, the `DynQ`, X's bytes, then the convolution's own.
impl CudaKernel for DynamicConvKernel {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::check;
    use crate::ir::ops::{Conv, Op, UnaryOp};
    use crate::Tensor;

    fn conv(kernel: usize, stride: usize, pad: usize, group: usize, act: Option<UnaryOp>) -> Conv {
        Conv {
            kernel: vec![kernel, kernel],
            strides: vec![stride, stride],
            pads: vec![pad; 4],
            dilations: vec![1, 1],
            group,
            has_bias: true,
            act,
            residual: false,
        }
    }

    fn dqc(c: Conv, m: usize, per_channel: bool, zero_point: i32) -> DynamicQuantizeConv {
        let count = if per_channel { m } else { 1 };
        DynamicQuantizeConv {
            conv: c,
            w_scale: (0..count).map(|i| 0.004 + i as f32 * 3e-4).collect(),
            w_zero_point: vec![zero_point; count],
        }
    }

    /// X with both signs (so the zero point is inside the range), weights as bytes.
    fn inputs(wdtype: DType, c: usize, cg: usize, m: usize, k: usize, hw: usize) -> [Tensor; 3] {
        let n = 2 * c * hw * hw;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 53 % 211) as f32 - 80.0) * 0.031)
            .collect();
        let x = Tensor::from_vec(&[2, c, hw, hw], x).unwrap();
        let mut w = Tensor::zeros(wdtype, &[m, cg, k, k]);
        for (i, b) in w.bytes_mut().iter_mut().enumerate() {
            *b = ((i * 131 + 7) % 251) as u8;
        }
        let bias = Tensor::from_vec(&[m], (0..m).map(|i| i as f32 * 0.1 - 0.7).collect()).unwrap();
        [x, w, bias]
    }

    /// Every QConv kernel a DynamicQuantizeConv can take, against the CPU: the per-output
    /// kernel (3×3 stride 2 padded, u8 weights with a zero point; a 1×1 over a small plane,
    /// four lanes an output), dp4a (symmetric i8 weights, per channel, ReLU6), depthwise, and
    /// the tiled pointwise kernel (1×1 over a plane).
    #[test]
    fn dynamic_conv_matches_the_cpu() {
        let relu6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
        let cases = [
            (
                dqc(conv(3, 2, 1, 1, None), 6, false, 128),
                DType::U8,
                5,
                5,
                6,
                3,
                9,
            ),
            (
                dqc(conv(1, 1, 0, 1, None), 10, false, 3),
                DType::U8,
                64,
                64,
                10,
                1,
                3,
            ),
            (
                dqc(conv(3, 1, 1, 1, relu6), 8, true, 0),
                DType::I8,
                8,
                8,
                8,
                3,
                9,
            ),
            (
                dqc(conv(3, 1, 1, 12, relu6), 12, true, 0),
                DType::I8,
                12,
                1,
                12,
                3,
                9,
            ),
            (
                dqc(conv(1, 1, 0, 1, Some(UnaryOp::Relu)), 40, true, 0),
                DType::I8,
                36,
                36,
                40,
                1,
                9,
            ),
        ];
        for (op, wdtype, c, cg, m, k, hw) in cases {
            let ins = inputs(wdtype, c, cg, m, k, hw);
            check(
                &Op::DynamicQuantizeConv(op),
                &ins,
                &[false, true, true],
                1e-6,
            );
        }
    }
}

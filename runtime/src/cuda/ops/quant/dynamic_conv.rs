//! DynamicQuantizeConv on the GPU: X quantized into scratch as DynamicQuantizeLinear does
//! (`dynamic_quantize::DynQuantize`, the run's scale and zero point left in device memory),
//! then QConv's kernels over those bytes (`qconv::QConvKernel::launch_on`), which read the zero
//! point from there and multiply each channel's weight scale by the run's X scale. The integer
//! sums are exact and the epilogue is `acc·(sx·w_scale[m]) + B[m]` in the CPU's f32 steps, so
//! the outputs are the CPU's (and onnxruntime's). Depthwise layers take QConv's per-output
//! kernel; the CPU convolves them in f32 over `q − zx`, whose sums are the same integers.

use super::dynamic_quantize::{over_quantized, Quantized};
use super::qconv;
use crate::cuda::ops::{BuildCtx, CudaKernel, Support};
use crate::ir::ops::{DynamicQuantizeConv, QConv};
use crate::ir::Fact;
use crate::tensor::DType;
use crate::Result;

fn as_qconv(op: &DynamicQuantizeConv) -> QConv {
    over_quantized(op.conv.clone(), &op.w_scale, &op.w_zero_point)
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

pub fn build(op: &DynamicQuantizeConv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let facts = byte_facts(b.inputs);
    let conv = qconv::build_kernel(
        &as_qconv(op),
        &BuildCtx {
            dev: b.dev,
            inputs: &facts,
            outputs: b.outputs,
            consts: b.consts,
            fused: None,
            prologue: None,
        },
    )?;
    Ok(Box::new(Quantized::new(b.dev, b.inputs[0].len(), conv)?))
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
                0.0,
            );
        }
    }
}

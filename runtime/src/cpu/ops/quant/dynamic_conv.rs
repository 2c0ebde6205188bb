//! CPU kernel for DynamicQuantizeConv: X quantized to u8 per run exactly as
//! DynamicQuantizeLinear does (`dynamic_quantize::quantize_split`, onnxruntime's bytes), then
//! QConv's convolution of those bytes (its plans: depthwise, 1×1 in place, shifted, unfolded;
//! i32 accumulation, exact) with the run's zero point as the padding and the epilogue
//! `acc·(sx·w_scale[m]) + B[m]` — the rounding steps of onnxruntime's Cast → Mul → Add —
//! then the fused activation.
//!
//! The QConv kernel is built once with zero point 0 and scale 1 for X; each run hands it the
//! range's zero point and scale (`RunX`): the GEMM plans take them as `qgemm::Dynamic`, the
//! depthwise plan as a per-channel multiplier `sx·w_scale[m]` computed into scratch, over X
//! quantized to f32 planes of `q − zx` (`quantize_split`): the fp32 depthwise kernels
//! (`QConvKernel::depthwise_ints`), whose planar path runs wide planes several times faster
//! than the byte path's channel-interleaved blocks.

use edgefuse_kernels::qgemm::Dynamic;

use super::dynamic_quantize::quantize_split;
use super::qconv::{QConvKernel, RunX, Spec};
use super::requant::Domain;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{DynamicQuantizeConv, OpInfo, QOut};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

pub fn build(op: &DynamicQuantizeConv, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    let (x, w, y) = (&b.inputs[0], &b.inputs[1], &b.outputs[0]);
    if y.is_empty() {
        return Ok(Box::new(Empty));
    }
    if x.is_empty() || w.is_empty() {
        // An empty input or filter with a non-empty output: each output the bias alone.
        return unsupported(format!(
            "DynamicQuantizeConv of an empty input {:?} or filter {:?}",
            x.shape, w.shape
        ));
    }
    let spec = Spec {
        conv: &op.conv,
        x: Domain { xor: 0, zp: 0 },
        x_scale: 1.0,
        w_scale: &op.w_scale,
        w_zero_point: &op.w_zero_point,
        out: QOut {
            dtype: DType::F32,
            q: None,
        },
    };
    let conv = QConvKernel::new(&spec, b)?;
    let (xs, _) = conv.sizes();
    // Bytes, or f32 integers for the depthwise plan.
    let elem = if conv.is_depthwise() { 4 } else { 1 };
    Ok(Box::new(DynamicConvKernel {
        xq_bytes: (xs * elem).next_multiple_of(64),
        mult_bytes: (conv.mult().len() * 4).next_multiple_of(64),
        conv,
    }))
}

/// An empty output: nothing to compute.
struct Empty;

impl CpuKernel for Empty {
    fn run(&self, _: &[TensorView], _: &mut [TensorViewMut], _: &mut [u8], _: &Ctx) -> Result<()> {
        Ok(())
    }
}

struct DynamicConvKernel {
    conv: QConvKernel,
    /// Scratch for X's bytes, or f32 integers for a depthwise plan (the whole input: one
    /// range per run).
    xq_bytes: usize,
    /// Scratch for the run's per-channel multipliers `sx·w_scale[m]`.
    mult_bytes: usize,
}

impl CpuKernel for DynamicConvKernel {
    fn scratch_bytes(&self) -> usize {
        self.xq_bytes + self.mult_bytes + self.conv.scratch_bytes()
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let (xs, ys) = self.conv.sizes();
        if x.len() != xs || outputs[0].data.len() != ys * 4 || scratch.len() < self.scratch_bytes()
        {
            return Err(Error::invalid(
                "DynamicQuantizeConv: buffers do not match the planned shapes",
            ));
        }
        let (xq, rest) = scratch.split_at_mut(self.xq_bytes);
        let (mult, rest) = rest.split_at_mut(self.mult_bytes);
        let depthwise = self.conv.is_depthwise();
        let (sx, zx) = quantize_split(x, xq, depthwise, ctx.threads);
        // onnxruntime's Mul(sx, sw) per channel, then Mul(acc, ·): the same f32 products.
        let w_scale = self.conv.mult();
        let mult: &mut [f32] = bytemuck::cast_slice_mut(&mut mult[..w_scale.len() * 4]);
        for (d, &s) in mult.iter_mut().zip(w_scale) {
            *d = sx * s;
        }
        let run = RunX {
            dom: Domain { xor: 0, zp: zx },
            dynamic: Some(Dynamic {
                zero_point: zx,
                scale: sx,
                accumulate: false,
            }),
            mult,
        };
        if depthwise {
            let xi: &[f32] = bytemuck::cast_slice(&xq[..xs * 4]);
            self.conv
                .depthwise_ints(&run, xi, &mut outputs[0], rest, ctx);
        } else {
            self.conv
                .execute(&run, &xq[..xs], &mut outputs[0], rest, ctx);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::{eval, eval_threads};
    use crate::ir::ops::{Conv, DynamicQuantizeConv, Op, UnaryOp};
    use crate::tensor::DType;
    use crate::Tensor;

    /// Batches of three run image by image: on two threads the images split between them
    /// (depthwise over f32 planes, shifted, unfolded at stride 2, 1×1 in place), the same
    /// values as on one.
    #[test]
    fn a_batch_split_by_image_gives_the_values_of_one_thread() {
        /// (x shape, output channels, kernel, stride, pad, group)
        type Case = (&'static [usize], usize, usize, usize, usize, usize);
        let cases: [Case; 4] = [
            (&[3, 32, 20, 20], 32, 3, 1, 1, 32),
            (&[3, 8, 26, 26], 16, 3, 1, 1, 1),
            (&[3, 3, 50, 50], 8, 3, 2, 1, 1),
            (&[3, 16, 24, 24], 8, 1, 1, 0, 1),
        ];
        for (i, (xs, m, k, stride, pad, group)) in cases.into_iter().enumerate() {
            let n: usize = xs.iter().product();
            let x: Vec<f32> = (0..n)
                .map(|j| ((j * 37 + i) % 101) as f32 * 0.05 - 2.0)
                .collect();
            let x = Tensor::from_vec(xs, x).unwrap();
            let mut w = Tensor::zeros(DType::I8, &[m, xs[1] / group, k, k]);
            for (j, b) in w.bytes_mut().iter_mut().enumerate() {
                *b = ((j * 131 + i) % 251) as u8;
            }
            let bias = Tensor::from_vec(&[m], (0..m).map(|j| j as f32 * 0.1).collect()).unwrap();
            let op = Op::DynamicQuantizeConv(DynamicQuantizeConv {
                conv: Conv {
                    kernel: vec![k, k],
                    strides: vec![stride, stride],
                    pads: vec![pad; 4],
                    dilations: vec![1, 1],
                    group,
                    has_bias: true,
                    act: Some(UnaryOp::Relu),
                    residual: false,
                },
                w_scale: vec![0.003],
                w_zero_point: vec![0],
            });
            let one = eval(&op, &[&x, &w, &bias]).unwrap();
            let two = eval_threads(&op, &[&x, &w, &bias], 2).unwrap();
            assert_eq!(
                one[0].bytes(),
                two[0].bytes(),
                "case {i}: 1 and 2 threads differ"
            );
        }
    }
}

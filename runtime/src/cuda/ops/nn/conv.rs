//! Conv (1-D and 2-D): f32 pointwise layers through our tiled kernel (`conv_pointwise`),
//! depthwise and small layers through our direct kernel (`conv_direct`), the rest through
//! cuDNN. Bias, residual and ReLU run fused inside cuDNN's call, and so does a residual
//! without bias or activation (`y = conv(x) + y`, y holding the residual: `cuda::carry` leaves
//! such convolutions); other epilogues (a bias alone, ReLU6, Swish, …) run as
//! `elementwise_bias_act` right after. Asymmetric padding (TF "same") first pads the input into
//! scratch with `shape_pad`, then convolves without padding.

use cudarc::driver::CudaFunction;

use super::super::elementwise::unary::epilogue;
use cudarc::driver::result as dr;

use crate::cuda::device::{arg, cuda_err, Device};
use crate::cuda::dnn::{ConvAdds, ConvPlan, ConvShape};
use crate::cuda::ops::{
    check_float, float_suffix, size_suffix, BuildCtx, CudaKernel, Dims, Io, Support,
};
use crate::ir::ops::{Conv, UnaryOp};
use crate::ir::Fact;
use crate::Result;

pub fn supports(op: &Conv, inputs: &[Fact], outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    if inputs
        .iter()
        .chain(outputs)
        .any(|f| f.dtype != inputs[0].dtype)
    {
        return Err("Conv with mixed dtypes".into());
    }
    if !(1..=2).contains(&op.kernel.len()) {
        return Err(format!("{}-D convolution", op.kernel.len()));
    }
    epilogue(op.act)?;
    Ok(())
}

/// Pre-padding of the input into scratch, for asymmetric pads.
struct PrePad {
    f: CudaFunction,
    /// The input is f32 and the kernel narrows it to f16 as it pads (`Prologue::narrow`).
    narrow: bool,
    n: i64,
    od: Dims,
    xd: Dims,
    begin: Dims,
    rank: i32,
    bytes: usize,
}

/// The separate epilogue kernel and its arguments: (function, activation code (act, p0, p1),
/// output elements n, inner (spatial) size, channels).
type Epilogue = (CudaFunction, (i32, f32, f32), i64, i64, i64);

struct ConvKernel {
    plan: ConvPlan,
    /// Bias, residual and activation run inside cuDNN's call.
    fused: bool,
    has_bias: bool,
    /// Input index of the residual, added in the epilogue (`elementwise_bias_res_act`), or by
    /// cuDNN itself when `accumulate`.
    residual: Option<usize>,
    /// No bias, no activation, a residual: cuDNN adds the convolution to y, which holds the
    /// residual (shared memory, or copied there first), and no epilogue runs.
    accumulate: bool,
    /// Bytes of y.
    y_bytes: usize,
    epilogue: Option<Epilogue>,
    prepad: Option<PrePad>,
}

/// Spatial axes as (h, w): a 1-D axis becomes (1, len).
pub(super) fn hw(v: &[usize], one: usize) -> (usize, usize) {
    match v {
        [w] => (one, *w),
        [h, w, ..] => (*h, *w),
        [] => (one, one),
    }
}

pub fn build(op: &Conv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    if b.prologue.is_some_and(|p| p.narrow) {
        return build_cudnn(op, b);
    }
    if super::conv_pointwise::suits(op, &b.inputs[0], &b.outputs[0]) {
        return super::conv_pointwise::build(op, b);
    }
    if super::conv_direct::suits(op, &b.inputs[0], &b.outputs[0]) {
        return super::conv_direct::build(op, b);
    }
    build_cudnn(op, b)
}

/// Whether `op` runs through cuDNN (neither our pointwise nor our direct kernel suits it).
pub fn runs_on_cudnn(op: &Conv, x: &Fact, y: &Fact) -> bool {
    !super::conv_pointwise::suits(op, x, y) && !super::conv_direct::suits(op, x, y)
}

/// Whether `op` runs through cuDNN with a separate epilogue kernel (its bias and any
/// activation but ReLU, no residual): one a reader can take over (`cuda::fuse::Prologue`).
pub fn separate_epilogue(op: &Conv, x: &Fact, y: &Fact) -> bool {
    let cudnn = runs_on_cudnn(op, x, y);
    let in_cudnn = op.has_bias && op.act == Some(UnaryOp::Relu);
    cudnn && !op.residual && !in_cudnn && (op.has_bias || op.act.is_some())
}

/// The convolution through cuDNN (see the module documentation).
pub fn build_cudnn(op: &Conv, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let dtype = y.dtype;
    let s = op.kernel.len();
    let (begin, end) = (&op.pads[..s], &op.pads[s..]);
    let symmetric = begin == end;
    let narrow = b.prologue.is_some_and(|p| p.narrow);
    if narrow && (symmetric || x.dtype != crate::DType::F32 || dtype != crate::DType::F16) {
        return Err(crate::Error::Unsupported(
            "narrowing needs an f32 input, f16 output and asymmetric padding".into(),
        ));
    }
    if b.prologue.is_some() && !narrow {
        return Err(crate::Error::Unsupported(
            "a convolution on cuDNN cannot apply its writer's epilogue".into(),
        ));
    }
    let (mut h, mut w) = hw(&x.shape[2..], 1);
    let mut pad = hw(begin, 0);
    let prepad = if symmetric {
        None
    } else {
        let mut od = x.shape.clone();
        for i in 0..s {
            od[2 + i] += begin[i] + end[i];
        }
        (h, w) = hw(&od[2..], 1);
        pad = (0, 0);
        let mut pb = vec![0i64; x.rank()];
        for i in 0..s {
            pb[2 + i] = begin[i] as i64;
        }
        let name = if narrow {
            "shape_pad_zero_narrow".to_string()
        } else {
            format!("shape_pad_{}", size_suffix(dtype))
        };
        Some(PrePad {
            f: b.dev.function(&name)?,
            narrow,
            n: od.iter().product::<usize>() as i64,
            bytes: (od.iter().product::<usize>() * dtype.size()).div_ceil(256) * 256,
            od: Dims::from(od.iter().map(|&d| d as i64)),
            xd: Dims::from(x.shape.iter().map(|&d| d as i64)),
            begin: Dims::from(pb),
            rank: x.rank() as i32,
        })
    };
    let (kh, kw) = hw(&op.kernel, 1);
    let (oh, ow) = hw(&y.shape[2..], 1);
    let shape = ConvShape {
        n: x.shape[0],
        c: x.shape[1],
        h,
        w,
        k: y.shape[1],
        kh,
        kw,
        oh,
        ow,
        group: op.group,
        pad,
        stride: hw(&op.strides, 1),
        dilation: hw(&op.dilations, 1),
    };
    let plan = ConvPlan::new(b.dev.dnn()?, &shape, dtype)?;
    // One cuDNN call computes relu(conv + residual + bias). (Its identity activation needs the
    // implicit precomputed GEMM algorithm, which made EfficientNet's f16 1×1 projections
    // 1.4–2× slower on an H200 than the algorithm cuDNN picks plus our epilogue kernel.)
    let fused = op.has_bias && op.act == Some(UnaryOp::Relu);
    let accumulate = op.residual && !op.has_bias && op.act.is_none();
    let needs_epilogue = !fused && !accumulate && (op.has_bias || op.act.is_some() || op.residual);
    let epilogue = if needs_epilogue {
        let code = epilogue(op.act).map_err(crate::Error::Unsupported)?;
        let which = if op.residual {
            "bias_res_act"
        } else {
            "bias_act"
        };
        let f = b.dev.function(&format!(
            "elementwise_{which}_{}",
            float_suffix(dtype).unwrap()
        ))?;
        Some((f, code, y.len() as i64, (oh * ow) as i64, y.shape[1] as i64))
    } else {
        None
    };
    Ok(Box::new(ConvKernel {
        plan,
        fused,
        has_bias: op.has_bias,
        residual: op.residual_index(),
        accumulate,
        y_bytes: y.len() * dtype.size(),
        epilogue,
        prepad,
    }))
}

impl CudaKernel for ConvKernel {
    fn scratch_bytes(&self) -> usize {
        self.plan.workspace + self.prepad.as_ref().map_or(0, |p| p.bytes)
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (mut x, w, y) = (io.inputs[0], io.inputs[1], io.outputs[0]);
        let bias = if self.has_bias { io.inputs[2] } else { 0 };
        let mut workspace = io.scratch;
        if let Some(p) = &self.prepad {
            let (mode, zero) = (0i32, 0u32);
            let dst = io.scratch;
            let mut args = [
                arg(&x),
                arg(&dst),
                arg(&p.n),
                arg(&p.rank),
                arg(&p.od),
                arg(&p.xd),
                arg(&p.begin),
                arg(&mode),
                arg(&zero),
            ];
            // Narrowing takes no mode or value.
            let count = if p.narrow { 7 } else { 9 };
            // SAFETY: (const T* x, T* y, i64 n, int rank, Dims od, Dims xd, Dims begin, int mode,
            // T value), or narrowing (const float* x, f16* y, … Dims begin); `dst` has `p.bytes`
            // of scratch (the f16 size when narrowing). The zero value is passed as 4 bytes; the
            // kernel reads only its element size (little-endian, so the low bytes are zero too).
            unsafe {
                dev.launch(&p.f, p.n as usize, &mut args[..count])?;
            }
            x = dst;
            workspace += p.bytes as u64;
        }
        let residual = self.residual.map(|r| io.inputs[r]);
        if let (true, Some(r)) = (self.accumulate, residual) {
            if r != y {
                // SAFETY: the residual and y are distinct device buffers of `y_bytes` each
                // (the same shape and dtype), ordered on the session's stream.
                unsafe { dr::memcpy_dtod_async(y, r, self.y_bytes, dev.cu_stream()) }
                    .map_err(|e| cuda_err("copying a residual into a convolution's output", e))?;
            }
        }
        // SAFETY: buffers match the facts the plan was built from; workspace follows the padded
        // input inside scratch; with `accumulate`, y holds the residual.
        let adds = if self.fused {
            ConvAdds::BiasRelu(bias, residual)
        } else if self.accumulate {
            ConvAdds::Y
        } else {
            ConvAdds::Nothing
        };
        unsafe { self.plan.run(dev.dnn()?, (x, w), adds, y, workspace)? };
        if let (Some((f, (act, p0, p1), n, inner, channels)), Some(r)) =
            (&self.epilogue, self.residual)
        {
            let res = io.inputs[r];
            // SAFETY: (T* y, const T* bias, const T* res, i64 n, i64 inner, i64 channels, int act,
            // float p0, float p1); bias (or null) holds `channels` elements, res `n`.
            unsafe {
                dev.launch(
                    f,
                    *n as usize,
                    &mut [
                        arg(&y),
                        arg(&bias),
                        arg(&res),
                        arg(n),
                        arg(inner),
                        arg(channels),
                        arg(act),
                        arg(p0),
                        arg(p1),
                    ],
                )?;
            }
        } else if let Some((f, (act, p0, p1), n, inner, channels)) = &self.epilogue {
            // SAFETY: (T* y, const T* bias, i64 n, i64 inner, i64 channels, int act, float p0,
            // float p1); bias (or null) holds `channels` elements.
            unsafe {
                dev.launch(
                    f,
                    *n as usize,
                    &mut [
                        arg(&y),
                        arg(&bias),
                        arg(n),
                        arg(inner),
                        arg(channels),
                        arg(act),
                        arg(p0),
                        arg(p1),
                    ],
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, check_f16, values};
    use crate::ir::ops::{Conv, UnaryOp};
    use crate::ir::Op;

    #[test]
    fn conv_with_residual_matches_the_cpu() {
        let x = values(&[1, 4, 9, 9], 1);
        let b = values(&[8], 3);
        let r = values(&[1, 8, 5, 5], 4);
        let op = Op::Conv(Conv {
            residual: true,
            ..match conv(vec![1, 1, 1, 1], 1, Some(UnaryOp::Relu)) {
                Op::Conv(c) => c,
                _ => unreachable!(),
            }
        });
        check(
            &op,
            &[x, values(&[8, 4, 3, 3], 2), b, r],
            &[false, true, true, false],
            1e-5,
        );
    }

    fn conv(pads: Vec<usize>, group: usize, act: Option<UnaryOp>) -> Op {
        Op::Conv(Conv {
            kernel: vec![3, 3],
            strides: vec![2, 2],
            pads,
            dilations: vec![1, 1],
            group,
            has_bias: true,
            act,
            residual: false,
        })
    }

    #[test]
    fn conv_variants_match_the_cpu() {
        let x = values(&[1, 4, 9, 9], 1);
        let b = values(&[8], 3);
        for (op, w) in [
            (
                conv(vec![1, 1, 1, 1], 1, Some(UnaryOp::Relu)),
                values(&[8, 4, 3, 3], 2),
            ),
            (
                conv(
                    vec![0, 0, 1, 1],
                    1,
                    Some(UnaryOp::Clip { min: 0.0, max: 6.0 }),
                ),
                values(&[8, 4, 3, 3], 2),
            ),
            (conv(vec![1, 1, 1, 1], 4, None), values(&[8, 1, 3, 3], 2)),
        ] {
            check(&op, &[x.clone(), w, b.clone()], &[false, true, true], 1e-5);
        }
    }

    #[test]
    fn direct_convolutions_match_the_cpu() {
        // Depthwise with TF-style asymmetric padding and ReLU6; 1-D with dilation; a 1×1 thin
        // layer with a residual; a 3×3 whose 36-term reduction takes two lanes per output.
        let clip6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
        let dw = Op::Conv(Conv {
            pads: vec![0, 0, 1, 1],
            group: 6,
            act: clip6,
            ..unwrap(conv(vec![0, 0, 0, 0], 1, None))
        });
        let x = values(&[2, 6, 9, 8], 1);
        for f16 in [false, true] {
            let run = |op: &Op, inputs: &[crate::Tensor], consts: &[bool]| {
                if f16 {
                    check_f16(op, inputs, consts, 1e-2)
                } else {
                    check(op, inputs, consts, 1e-5)
                }
            };
            run(
                &dw,
                &[x.clone(), values(&[6, 1, 3, 3], 2), values(&[6], 3)],
                &[false, true, true],
            );
            // A 5×5 depthwise window, stride 2, TF-style padding.
            let dw5 = Op::Conv(Conv {
                kernel: vec![5, 5],
                strides: vec![2, 2],
                pads: vec![1, 1, 2, 2],
                ..unwrap(dw.clone())
            });
            run(
                &dw5,
                &[x.clone(), values(&[6, 1, 5, 5], 10), values(&[6], 11)],
                &[false, true, true],
            );
            let one_d = Op::Conv(Conv {
                kernel: vec![3],
                strides: vec![1],
                pads: vec![2, 1],
                dilations: vec![2],
                group: 1,
                has_bias: false,
                act: Some(UnaryOp::Relu),
                residual: false,
            });
            run(
                &one_d,
                &[values(&[1, 5, 17], 4), values(&[4, 5, 3], 5)],
                &[false, true],
            );
            let thin = Op::Conv(Conv {
                kernel: vec![1, 1],
                strides: vec![1, 1],
                pads: vec![0, 0, 0, 0],
                residual: true,
                ..unwrap(conv(vec![0, 0, 0, 0], 1, clip6))
            });
            run(
                &thin,
                &[
                    x.clone(),
                    values(&[10, 6, 1, 1], 6),
                    values(&[10], 7),
                    values(&[2, 10, 9, 8], 8),
                ],
                &[false, true, true, false],
            );
            run(
                &conv(vec![1, 1, 1, 1], 1, None),
                &[
                    values(&[1, 4, 9, 9], 9),
                    values(&[8, 4, 3, 3], 2),
                    values(&[8], 3),
                ],
                &[false, true, true],
            );
        }
    }

    #[test]
    fn pointwise_convolutions_match_the_cpu() {
        // 1×1 layers over 7×7 and 4×5 planes take the tiled kernel: 70 channels (two k tiles,
        // the second partial), 37 outputs (a partial m tile), 49 positions (a partial q tile),
        // two images; with bias, residual and ReLU6, and without bias with Swish.
        let pw = |act, residual, has_bias| {
            Op::Conv(Conv {
                kernel: vec![1, 1],
                strides: vec![1, 1],
                pads: vec![0, 0, 0, 0],
                has_bias,
                residual,
                act,
                ..unwrap(conv(vec![0, 0, 0, 0], 1, None))
            })
        };
        let clip6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
        let (x, w, b, r) = (
            values(&[2, 70, 7, 7], 1),
            values(&[37, 70, 1, 1], 2),
            values(&[37], 3),
            values(&[2, 37, 7, 7], 4),
        );
        let facts = |t: &crate::Tensor| crate::ir::Fact::new(t.dtype, t.shape.clone());
        let Op::Conv(c) = pw(clip6, true, true) else {
            unreachable!()
        };
        assert!(super::super::conv_pointwise::suits(
            &c,
            &facts(&x),
            &facts(&r)
        ));
        let with_res = [x.clone(), w.clone(), b, r];
        check(
            &pw(clip6, true, true),
            &with_res,
            &[false, true, true, false],
            1e-5,
        );
        check_f16(
            &pw(clip6, true, true),
            &with_res,
            &[false, true, true, false],
            1e-2,
        );
        let swish = pw(Some(UnaryOp::Swish), false, false);
        let xs = values(&[1, 40, 4, 5], 5);
        check(
            &swish,
            &[xs.clone(), values(&[33, 40, 1, 1], 6)],
            &[false, true],
            1e-5,
        );
        check_f16(
            &swish,
            &[xs, values(&[33, 40, 1, 1], 6)],
            &[false, true],
            1e-2,
        );
    }

    fn unwrap(op: Op) -> Conv {
        match op {
            Op::Conv(c) => c,
            _ => unreachable!(),
        }
    }

    #[test]
    fn cudnn_convolutions_match_the_cpu() {
        // Past the direct kernel's sizes (360-term reductions, 6.9 M products): cuDNN, with
        // the ReLU6-and-residual epilogue kernel after it, in f32 and on tensor cores in f16.
        let op = Op::Conv(Conv {
            strides: vec![1, 1],
            residual: true,
            ..unwrap(conv(
                vec![1, 1, 1, 1],
                1,
                Some(UnaryOp::Clip { min: 0.0, max: 6.0 }),
            ))
        });
        let (x, w, b, r) = (
            values(&[1, 40, 20, 20], 1),
            values(&[48, 40, 3, 3], 2),
            values(&[48], 3),
            values(&[1, 48, 20, 20], 4),
        );
        let facts = |t: &crate::Tensor| crate::ir::Fact::new(t.dtype, t.shape.clone());
        let Op::Conv(c) = &op else { unreachable!() };
        assert!(!super::super::conv_direct::suits(c, &facts(&x), &facts(&r)));
        let inputs = [x, w, b, r];
        check(&op, &inputs, &[false, true, true, false], 1e-4);
        check_f16(&op, &inputs, &[false, true, true, false], 2e-2);
        // ReLU runs inside cuDNN's call, the residual as its z input; no activation after it.
        for act in [Some(UnaryOp::Relu), None] {
            let op = Op::Conv(Conv { act, ..c.clone() });
            check(&op, &inputs, &[false, true, true, false], 1e-4);
            check_f16(&op, &inputs, &[false, true, true, false], 2e-2);
        }
        // A residual without bias or activation: cuDNN adds the convolution to y, the residual
        // copied there first (separate buffers here; a session shares them, `cuda::carry`).
        let op = Op::Conv(Conv {
            act: None,
            has_bias: false,
            ..c.clone()
        });
        let inputs = [inputs[0].clone(), inputs[1].clone(), inputs[3].clone()];
        check(&op, &inputs, &[false, true, false], 1e-4);
        check_f16(&op, &inputs, &[false, true, false], 2e-2);
    }

    #[test]
    fn conv_in_f16_on_tensor_cores_matches_the_f32_cpu() {
        let x = values(&[1, 8, 9, 9], 1);
        let op = conv(vec![1, 1, 1, 1], 1, Some(UnaryOp::Relu));
        let (w, b) = (values(&[16, 8, 3, 3], 2), values(&[16], 3));
        check_f16(&op, &[x, w, b], &[false, true, true], 1e-2);
    }
}

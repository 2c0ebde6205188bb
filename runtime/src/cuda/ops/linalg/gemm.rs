//! Gemm: `Y = act(alpha · op(A) · op(B) + beta · C)` as one cuBLAS call, then
//! `elementwise_bias_act` when C is a row/column/scalar bias or an activation is fused.
//! A full `[M, N]` C is copied into Y first and accumulated by cuBLAS (beta). Few-row products
//! with B transposed or constant (transposed once at build) and no full C run as one
//! `linalg_gemm_small_*` launch with the bias and activation inside (`small`), and a Softmax
//! over the rows too when one reads only this Gemm (`takes_softmax`, `cuda::fuse`).

use cudarc::driver::CudaFunction;

use super::super::elementwise::unary::epilogue;
use super::small;
use crate::cuda::blas::Gemm as BlasGemm;
use crate::cuda::device::{arg, cuda_err, Device, DeviceBuffer};
use crate::cuda::ops::{check_float, float_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::{Gemm, Softmax};
use crate::ir::{Fact, Op};
use crate::Result;

/// How C enters the result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bias {
    None,
    /// Added by the epilogue: element i of Y takes `c[(i / inner) % channels]`.
    Epilogue {
        inner: i64,
        channels: i64,
    },
    /// Copied into Y, then cuBLAS adds the product (beta).
    Full,
}

fn bias_kind(op: &Gemm, inputs: &[Fact], m: usize, n: usize) -> std::result::Result<Bias, String> {
    let Some(c) = inputs.get(2) else {
        return Ok(Bias::None);
    };
    let len = c.len();
    if len == m * n && c.shape.last() == Some(&n) && (c.rank() < 2 || c.shape[c.rank() - 2] == m) {
        return Ok(Bias::Full);
    }
    if op.beta != 1.0 {
        return Err(format!("Gemm with a broadcast C and beta {}", op.beta));
    }
    if len == 1 {
        Ok(Bias::Epilogue {
            inner: 1,
            channels: 1,
        })
    } else if len == n && c.shape.last() == Some(&n) {
        Ok(Bias::Epilogue {
            inner: 1,
            channels: n as i64,
        })
    } else if len == m && c.shape.last() == Some(&1) {
        Ok(Bias::Epilogue {
            inner: n as i64,
            channels: m as i64,
        })
    } else {
        Err(format!("Gemm with C of shape {:?}", c.shape))
    }
}

fn dims(op: &Gemm, inputs: &[Fact]) -> (usize, usize, usize) {
    let (a, b) = (&inputs[0].shape, &inputs[1].shape);
    let (m, k) = if op.trans_a {
        (a[1], a[0])
    } else {
        (a[0], a[1])
    };
    let n = if op.trans_b { b[0] } else { b[1] };
    (m, n, k)
}

pub fn supports(op: &Gemm, inputs: &[Fact], _outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    if inputs.iter().any(|f| f.dtype != inputs[0].dtype) {
        return Err("Gemm with mixed dtypes".into());
    }
    let (m, n, _) = dims(op, inputs);
    bias_kind(op, inputs, m, n)?;
    epilogue(op.act)?;
    Ok(())
}

struct GemmKernel {
    gemm: BlasGemm,
    bias: Bias,
    out_bytes: usize,
    epilogue: Option<(CudaFunction, (i32, f32, f32))>,
    n_out: i64,
}

/// Gemm through the few-row kernel; B in `[N, K]` order: the input itself, or a transposed
/// copy of a constant B made at build.
struct SmallKernel {
    gemm: small::SmallGemm,
    has_bias: bool,
    bt: Option<DeviceBuffer>,
}

impl CudaKernel for SmallKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let b = self.bt.as_ref().map_or(io.inputs[1], |t| t.ptr);
        let bias = if self.has_bias { io.inputs[2] } else { 0 };
        // SAFETY: A [M, K], B [N, K] (as checked at build), the bias its facts, Y [M, N].
        unsafe { self.gemm.run(dev, io.inputs[0], b, bias, io.outputs[0]) }
    }
}

/// How C enters the few-row kernel, when the product runs there: A not transposed, B
/// transposed or constant (transposed at build), no full C other than a bias, and a size the
/// kernel takes.
fn small_bias(op: &Gemm, inputs: &[Fact], b_const: bool) -> Option<Bias> {
    let (m, n, k) = dims(op, inputs);
    let bias = bias_kind(op, inputs, m, n).ok()?;
    // A full C with beta 1 is a bias too, element by element (a batch-1 Linear's [N] bias
    // reads as a full [1, N] C).
    let bias = match bias {
        Bias::Full if op.beta == 1.0 => Bias::Epilogue {
            inner: 1,
            channels: (m * n) as i64,
        },
        Bias::Full => return None,
        other => other,
    };
    let fits = !op.trans_a && (op.trans_b || b_const) && small::suits(m, n, k);
    fits.then_some(bias)
}

/// Whether the kernel can take `softmax` reading this Gemm's output `y`: a Softmax or
/// LogSoftmax over the rows (the last axis), and the product on the few-row kernel.
pub fn takes_softmax(
    op: &Gemm,
    inputs: &[Fact],
    b_const: bool,
    softmax: &Softmax,
    y: &Fact,
) -> bool {
    softmax.axis + 1 == y.rank() && small_bias(op, inputs, b_const).is_some()
}

pub fn build(op: &Gemm, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let dtype = b.inputs[0].dtype;
    let (m, n, k) = dims(op, b.inputs);
    let bias = bias_kind(op, b.inputs, m, n).map_err(crate::Error::Unsupported)?;
    let b_const = b.consts.get(1).and_then(|c| c.as_ref());
    let softmax = match b.fused.map(|f| (&f.op, &f.mid)) {
        Some((Op::Softmax(s), y)) if takes_softmax(op, b.inputs, b_const.is_some(), s, y) => {
            Some(s.log)
        }
        Some((r, _)) => {
            return Err(crate::Error::Unsupported(format!(
                "this Gemm cannot run a {} in its kernel",
                r.name()
            )))
        }
        None => None,
    };
    if let Some(bias) = small_bias(op, b.inputs, b_const.is_some()) {
        let bt = match (op.trans_b, b_const) {
            (false, Some(c)) => Some(small::transposed(b.dev, c.data, (k, n), dtype.size())?),
            _ => None,
        };
        let (inner_channels, has_bias) = match bias {
            Bias::Epilogue { inner, channels } => (Some((inner, channels)), true),
            _ => (None, false),
        };
        let act = epilogue(op.act).map_err(crate::Error::Unsupported)?;
        let mut gemm =
            small::SmallGemm::new(b.dev, dtype, (m, n, k), k, op.alpha, inner_channels, act)?;
        if let Some(log) = softmax {
            gemm.fold_softmax(b.dev, log)?;
        }
        return Ok(Box::new(SmallKernel { gemm, has_bias, bt }));
    }
    let mut gemm = BlasGemm::new(dtype, op.trans_a, op.trans_b, m, n, k);
    gemm.alpha = op.alpha;
    gemm.beta = if bias == Bias::Full { op.beta } else { 0.0 };
    gemm.check()?;
    b.dev.blas()?;
    let act = epilogue(op.act).map_err(crate::Error::Unsupported)?;
    let needs_epilogue = matches!(bias, Bias::Epilogue { .. }) || op.act.is_some();
    let s = float_suffix(dtype).expect("checked by supports");
    Ok(Box::new(GemmKernel {
        gemm,
        bias,
        out_bytes: m * n * dtype.size(),
        epilogue: if needs_epilogue {
            Some((b.dev.function(&format!("elementwise_bias_act_{s}"))?, act))
        } else {
            None
        },
        n_out: (m * n) as i64,
    }))
}

impl CudaKernel for GemmKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let y = io.outputs[0];
        if self.bias == Bias::Full {
            // SAFETY: C and Y both hold M·N elements.
            unsafe {
                cudarc::driver::result::memcpy_dtod_async(
                    y,
                    io.inputs[2],
                    self.out_bytes,
                    dev.cu_stream(),
                )
            }
            .map_err(|e| cuda_err("copying Gemm's C", e))?;
        }
        // SAFETY: A, B, Y hold the matrices the sizes describe (checked against the facts).
        unsafe { self.gemm.run(dev.blas()?, io.inputs[0], io.inputs[1], y)? };
        if let Some((f, (act, p0, p1))) = &self.epilogue {
            let (bias, inner, channels) = match self.bias {
                Bias::Epilogue { inner, channels } => (io.inputs[2], inner, channels),
                _ => (0u64, 1i64, 1i64),
            };
            // SAFETY: (T* y, const T* bias, i64 n, i64 inner, i64 channels, int act, float p0,
            // float p1); bias (or null) holds `channels` elements.
            unsafe {
                dev.launch(
                    f,
                    self.n_out as usize,
                    &mut [
                        arg(&y),
                        arg(&bias),
                        arg(&self.n_out),
                        arg(&inner),
                        arg(&channels),
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
    use crate::ir::ops::{Gemm, UnaryOp};
    use crate::ir::Op;

    #[test]
    fn gemm_with_bias_and_relu_matches_the_cpu() {
        let op = Op::Gemm(Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
            act: Some(UnaryOp::Relu),
        });
        let (a, w, c) = (values(&[5, 64], 1), values(&[10, 64], 2), values(&[10], 3));
        check(
            &op,
            &[a.clone(), w.clone(), c.clone()],
            &[false, true, true],
            1e-5,
        );
        check_f16(&op, &[a, w, c], &[false, true, true], 1e-2);
    }

    #[test]
    fn gemm_paths_match_the_cpu() {
        // Few rows: the small kernel with B transposed (as given, or constant [K, N] made so
        // at build), a row bias and a column bias; a variable [K, N] B, a full C, more rows
        // than the small kernel takes, or a transposed A: cuBLAS.
        let gemm = |trans_a: bool, trans_b: bool| Gemm {
            alpha: 0.5,
            beta: 1.0,
            trans_a,
            trans_b,
            act: Some(UnaryOp::Clip {
                min: -0.5,
                max: 2.0,
            }),
        };
        // (op, A shape, B shape, C shape, B constant)
        type Case = (Gemm, Vec<usize>, Vec<usize>, Option<Vec<usize>>, bool);
        let cases: Vec<Case> = vec![
            (
                gemm(false, false),
                vec![1, 70],
                vec![70, 33],
                Some(vec![33]),
                true,
            ),
            (
                gemm(false, true),
                vec![3, 40],
                vec![9, 40],
                Some(vec![3, 1]),
                false,
            ),
            (gemm(false, false), vec![2, 40], vec![40, 9], None, false),
            (
                gemm(false, false),
                vec![2, 40],
                vec![40, 9],
                Some(vec![2, 9]),
                true,
            ),
            (
                gemm(false, true),
                vec![40, 24],
                vec![9, 24],
                Some(vec![9]),
                true,
            ),
            (
                gemm(true, false),
                vec![24, 4],
                vec![24, 9],
                Some(vec![9]),
                true,
            ),
        ];
        for (i, (g, a, w, c, b_const)) in cases.into_iter().enumerate() {
            let mut inputs = vec![values(&a, 1 + i as u64), values(&w, 20 + i as u64)];
            let mut consts = vec![false, b_const];
            if let Some(c) = c {
                inputs.push(values(&c, 40 + i as u64));
                consts.push(true);
            }
            let op = Op::Gemm(g);
            check(&op, &inputs, &consts, 1e-5);
            check_f16(&op, &inputs, &consts, 1e-2);
        }
    }
}

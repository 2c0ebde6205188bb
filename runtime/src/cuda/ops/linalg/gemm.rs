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
    /// A second product folded in (`cuda::fuse`): Y goes to scratch, Y2 to the output.
    tail: Option<TailIo>,
}

/// Where a folded second product's operands are.
struct TailIo {
    /// B2 transposed at build, else input `b2_at` as it is (`[N2, N]`).
    bt: Option<DeviceBuffer>,
    b2_at: usize,
    bias2_at: Option<usize>,
    mid_bytes: usize,
}

impl CudaKernel for SmallKernel {
    fn scratch_bytes(&self) -> usize {
        self.tail.as_ref().map_or(0, |t| t.mid_bytes)
    }

    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let b = self.bt.as_ref().map_or(io.inputs[1], |t| t.ptr);
        let bias = if self.has_bias { io.inputs[2] } else { 0 };
        let Some(t) = &self.tail else {
            // SAFETY: A [M, K], B [N, K] (as checked at build), the bias its facts, Y [M, N].
            return unsafe { self.gemm.run(dev, io.inputs[0], b, bias, io.outputs[0]) };
        };
        let b2 = t.bt.as_ref().map_or(io.inputs[t.b2_at], |x| x.ptr);
        let bias2 = t.bias2_at.map_or(0, |i| io.inputs[i]);
        // SAFETY: as above, Y [M, N] in scratch (`mid_bytes`), B2 [N2, N], bias2 its facts,
        // Y2 [M, N2] the output.
        unsafe {
            self.gemm.run_tail(
                dev,
                (io.inputs[0], b, bias, io.scratch),
                (b2, bias2, io.outputs[0]),
            )
        }
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

/// Whether the few-row kernel's last block can run `op2` reading this Gemm's output as its A
/// (`at` 0; `inputs2` its inputs, that output first; `b2_const` whether its B is a constant):
/// both products on the few-row kernel, over the same rows, with an activation the kernel has,
/// and the second small enough for one block (M·N·N2 ≤ 2¹⁶ multiply-adds).
pub fn takes_gemm(
    op: &Gemm,
    inputs: &[Fact],
    b_const: bool,
    op2: &Gemm,
    at: usize,
    inputs2: &[Fact],
    b2_const: bool,
) -> bool {
    if at != 0 || op2.trans_a || inputs2.len() < 2 {
        return false;
    }
    let ((m, n, _), (m2, n2, k2)) = (dims(op, inputs), dims(op2, inputs2));
    small_bias(op, inputs, b_const).is_some()
        && small_bias(op2, inputs2, b2_const).is_some()
        && (m2, k2) == (m, n)
        && m * n * n2 <= 1 << 16
        && epilogue(op2.act).is_ok()
        && inputs2.iter().all(|f| f.dtype == inputs[0].dtype)
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
    // The node's own inputs; a folded second product's follow them.
    let own = b.inputs.len() - b.fused.map_or(0, |f| f.extra);
    let inputs = &b.inputs[..own];
    let (m, n, k) = dims(op, inputs);
    let bias = bias_kind(op, inputs, m, n).map_err(crate::Error::Unsupported)?;
    let b_const = b.consts.get(1).and_then(|c| c.as_ref());
    let refuse = |what: &str| {
        crate::Error::Unsupported(format!("this Gemm cannot run a {what} in its kernel"))
    };
    let softmax_of = |f: Option<&crate::cuda::fuse::Fused>| match f.map(|f| (&f.op, &f.mid)) {
        Some((Op::Softmax(s), y)) if s.axis + 1 == y.rank() => Ok(Some(s.log)),
        Some((r, _)) => Err(refuse(r.name())),
        None => Ok(None),
    };
    let (softmax, tail) = match b.fused.map(|f| (&f.op, f)) {
        Some((Op::Gemm(g2), f)) => {
            let mut in2 = vec![f.mid.clone()];
            in2.extend_from_slice(&b.inputs[own..]);
            let b2 = b.consts.get(own).and_then(|c| c.as_ref());
            if !takes_gemm(op, inputs, b_const.is_some(), g2, f.at, &in2, b2.is_some()) {
                return Err(refuse("Gemm"));
            }
            (softmax_of(f.next.as_deref())?, Some((g2, in2, b2)))
        }
        Some((Op::Softmax(s), f)) if takes_softmax(op, inputs, b_const.is_some(), s, &f.mid) => {
            (Some(s.log), None)
        }
        Some((r, _)) => return Err(refuse(r.name())),
        None => (None, None),
    };
    if let Some(bias) = small_bias(op, inputs, b_const.is_some()) {
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
        let tail = match tail {
            Some((g2, in2, b2)) => {
                let (_, n2, k2) = dims(g2, &in2);
                let bias2 = small_bias(g2, &in2, b2.is_some()).expect("checked by takes_gemm");
                let (inner, channels) = match bias2 {
                    Bias::Epilogue { inner, channels } => (inner, channels),
                    _ => (1, 1),
                };
                let (act, p0, p1) = epilogue(g2.act).map_err(crate::Error::Unsupported)?;
                gemm.fold_gemm(
                    b.dev,
                    small::SmallTail {
                        n: n2 as i32,
                        inner: inner as i32,
                        channels: channels as i32,
                        act,
                        alpha: g2.alpha,
                        p0,
                        p1,
                        ..Default::default()
                    },
                )?;
                let bt = match (g2.trans_b, b2) {
                    (false, Some(c)) => {
                        Some(small::transposed(b.dev, c.data, (k2, n2), dtype.size())?)
                    }
                    _ => None,
                };
                Some(TailIo {
                    bt,
                    b2_at: own,
                    bias2_at: matches!(bias2, Bias::Epilogue { .. }).then_some(own + 1),
                    mid_bytes: gemm.mid_bytes(dtype.size()),
                })
            }
            None => None,
        };
        if let Some(log) = softmax {
            gemm.fold_softmax(b.dev, log)?;
        }
        return Ok(Box::new(SmallKernel {
            gemm,
            has_bias,
            bt,
            tail,
        }));
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

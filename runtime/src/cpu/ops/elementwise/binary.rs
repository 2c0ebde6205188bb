//! CPU kernel for Binary: numpy broadcasting through a precomputed [`Strided`] layout.
//!
//! The layout merges axes at build time, so same-shape operands become one contiguous row, a
//! scalar operand a row with stride 0, and a per-channel operand ([N,C,H,W] op [C,1,1]) rows of
//! H·W with stride 0 — each served by its own tight inner loop. f32, i64, i32, i8 and u8 for every
//! arithmetic op and PRelu (integer Div truncates, and gives 0 on division by zero instead of
//! trapping); Equal also on bool; And, Or and Xor on bool only; Pow also with an f32 base and an
//! exponent of another type.

use edgefuse_kernels::strided::{broadcast_strides, contiguous_strides, Strided};
use rayon::prelude::*;

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Binary, BinaryOp};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

/// Elements below which the kernel stays on the calling thread.
const PAR_MIN: usize = 1 << 16;
/// Elements per parallel task.
const PAR_CHUNK: usize = 1 << 14;

pub fn build(op: &Binary, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (a, bb) = (b.inputs[0].dtype, b.inputs[1].dtype);
    use DType::*;
    let ok = match op.op {
        BinaryOp::Pow => {
            matches!((a, bb), (F32, F32 | F16 | I64 | I32 | I8 | U8))
                || (a == bb && matches!(a, I64 | I32 | I8 | U8))
        }
        BinaryOp::Equal => a == bb && matches!(a, F32 | I64 | I32 | I8 | U8 | Bool),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => a == Bool && bb == Bool,
        _ => a == bb && matches!(a, F32 | I64 | I32 | I8 | U8),
    };
    if !ok {
        return unsupported(format!("{:?} of {a} and {bb}", op.op));
    }
    let out = &b.outputs[0].shape;
    let so = contiguous_strides(out);
    let sa = broadcast_strides(&b.inputs[0].shape, out);
    let sb = broadcast_strides(&b.inputs[1].shape, out);
    let Some(layout) = Strided::new(out, [&so, &sa, &sb]) else {
        return unsupported(format!("{:?} of rank {}", op.op, out.len()));
    };
    Ok(Box::new(BinaryKernel {
        op: op.op,
        a,
        b: bb,
        layout,
    }))
}

struct BinaryKernel {
    op: BinaryOp,
    a: DType,
    b: DType,
    layout: Strided<3>,
}

/// The arithmetic every supported type provides.
trait Num: bytemuck::Pod + PartialOrd + Send + Sync {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn pow(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
}

impl Num for f32 {
    #[inline(always)]
    fn add(self, o: f32) -> f32 {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: f32) -> f32 {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: f32) -> f32 {
        self * o
    }
    #[inline(always)]
    fn div(self, o: f32) -> f32 {
        self / o
    }
    #[inline(always)]
    fn pow(self, o: f32) -> f32 {
        powf(self, o)
    }
    /// NaN in either operand propagates.
    #[inline(always)]
    fn max(self, o: f32) -> f32 {
        if self > o || self.is_nan() {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn min(self, o: f32) -> f32 {
        if self < o || self.is_nan() {
            self
        } else {
            o
        }
    }
}

#[inline(always)]
fn powf(x: f32, y: f32) -> f32 {
    if y == 2.0 {
        x * x
    } else {
        x.powf(y)
    }
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            #[inline(always)]
            fn add(self, o: $t) -> $t {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn sub(self, o: $t) -> $t {
                self.wrapping_sub(o)
            }
            #[inline(always)]
            fn mul(self, o: $t) -> $t {
                self.wrapping_mul(o)
            }
            /// Truncating; 0 on division by zero (no trap on data).
            #[inline(always)]
            fn div(self, o: $t) -> $t {
                if o == 0 {
                    0
                } else {
                    self.wrapping_div(o)
                }
            }
            /// Through f64 like onnxruntime's `static_cast<T>(std::pow(x, y))`.
            #[inline(always)]
            fn pow(self, o: $t) -> $t {
                (self as f64).powf(o as f64) as $t
            }
            #[inline(always)]
            fn max(self, o: $t) -> $t {
                Ord::max(self, o)
            }
            #[inline(always)]
            fn min(self, o: $t) -> $t {
                Ord::min(self, o)
            }
        }
    )*};
}
int_num!(i64, i32, i8, u8);

impl CpuKernel for BinaryKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let (x, y) = (&inputs[0], &inputs[1]);
        let out = &mut outputs[0];
        let l = &self.layout;
        let t = ctx.threads;
        match self.a {
            DType::F32 if self.op == BinaryOp::Pow && self.b != DType::F32 => {
                let o = out.typed::<f32>();
                let xs = x.typed::<f32>();
                match self.b {
                    DType::F16 => apply(l, t, xs, y.typed::<half::f16>(), o, |a, b| {
                        powf(a, b.to_f32())
                    }),
                    DType::I64 => apply(l, t, xs, y.typed::<i64>(), o, |a, b| powf(a, b as f32)),
                    DType::I32 => apply(l, t, xs, y.typed::<i32>(), o, |a, b| powf(a, b as f32)),
                    DType::I8 => apply(l, t, xs, y.typed::<i8>(), o, |a, b| powf(a, b as f32)),
                    _ => apply(l, t, xs, y.data, o, |a, b| powf(a, b as f32)),
                }
            }
            DType::Bool if self.op.is_logical() => {
                // Any non-zero byte is true; the op is its truth table, so the three share one
                // loop.
                let table: [u8; 4] = match self.op {
                    BinaryOp::And => [0, 0, 0, 1],
                    BinaryOp::Or => [0, 1, 1, 1],
                    _ => [0, 1, 1, 0],
                };
                apply_serial(l, x.data, y.data, out.data, move |a: u8, b: u8| {
                    table[usize::from(a != 0) * 2 + usize::from(b != 0)]
                });
            }
            DType::I64 if self.op == BinaryOp::PRelu => prelu_serial::<i64>(l, x, y, out),
            DType::I32 if self.op == BinaryOp::PRelu => prelu_serial::<i32>(l, x, y, out),
            DType::I8 if self.op == BinaryOp::PRelu => prelu_serial::<i8>(l, x, y, out),
            DType::U8 if self.op == BinaryOp::PRelu => out.data.copy_from_slice(x.data),
            DType::F32 if self.op == BinaryOp::PRelu => {
                let o = out.typed::<f32>();
                apply(l, t, x.typed::<f32>(), y.typed::<f32>(), o, |a, b| {
                    if a < 0.0 {
                        a * b
                    } else {
                        a
                    }
                });
            }
            DType::F32 => self.run_num(x.typed::<f32>(), y.typed::<f32>(), out, t),
            DType::I64 => self.run_num(x.typed::<i64>(), y.typed::<i64>(), out, t),
            DType::I32 => self.run_num(x.typed::<i32>(), y.typed::<i32>(), out, t),
            DType::I8 => self.run_num(x.typed::<i8>(), y.typed::<i8>(), out, t),
            // u8 and bool: the raw bytes.
            _ => self.run_num(x.data, y.data, out, t),
        }
        Ok(())
    }
}

impl BinaryKernel {
    fn run_num<T: Num>(&self, x: &[T], y: &[T], out: &mut TensorViewMut, t: usize) {
        let l = &self.layout;
        if self.op.is_comparison() {
            let o: &mut [u8] = out.data;
            return match self.op {
                BinaryOp::Equal => apply(l, t, x, y, o, |a, b| (a == b) as u8),
                BinaryOp::Less => apply(l, t, x, y, o, |a, b| (a < b) as u8),
                _ => apply(l, t, x, y, o, |a, b| (a > b) as u8),
            };
        }
        let o: &mut [T] = bytemuck::cast_slice_mut(out.data);
        match self.op {
            BinaryOp::Add => apply(l, t, x, y, o, T::add),
            BinaryOp::Sub => apply(l, t, x, y, o, T::sub),
            BinaryOp::Mul => apply(l, t, x, y, o, T::mul),
            BinaryOp::Div => apply(l, t, x, y, o, T::div),
            BinaryOp::Pow => apply(l, t, x, y, o, T::pow),
            BinaryOp::Max => apply(l, t, x, y, o, T::max),
            _ => apply(l, t, x, y, o, T::min),
        }
    }
}

/// Runs `f` over the layout: operand 0 is `out` (contiguous), 1 is `a`, 2 is `b`.
fn apply<A, B, C, F>(l: &Strided<3>, threads: usize, a: &[A], b: &[B], out: &mut [C], f: F)
where
    A: Copy + Sync,
    B: Copy + Sync,
    C: Copy + Send,
    F: Fn(A, B) -> C + Sync,
{
    let n = l.inner();
    let [_, sa, sb] = l.inner_strides();
    let total = n * l.rows();
    if total == 0 {
        return;
    }
    if threads > 1 && total >= PAR_MIN {
        if l.rows() == 1 {
            out[..n]
                .par_chunks_mut(PAR_CHUNK)
                .enumerate()
                .for_each(|(k, o)| {
                    let start = (k * PAR_CHUNK) as isize;
                    row(o, a, start * sa, sa, b, start * sb, sb, &f);
                });
        } else {
            let rows_per = (PAR_CHUNK / n).max(1);
            out[..total]
                .par_chunks_mut(rows_per * n)
                .enumerate()
                .for_each(|(k, o)| {
                    let first = k * rows_per;
                    l.for_rows(first, first + o.len() / n, |r, [_, oa, ob]| {
                        let dst = &mut o[(r - first) * n..(r - first + 1) * n];
                        row(dst, a, oa, sa, b, ob, sb, &f);
                    });
                });
        }
        return;
    }
    apply_serial(l, a, b, out, f);
}

/// [`apply`] on the calling thread: also for ops rare enough (integer PRelu, And, Or, Xor) that
/// threaded instances of their own would cost the device binary more than they save.
fn apply_serial<A: Copy, B: Copy, C, F: Fn(A, B) -> C>(
    l: &Strided<3>,
    a: &[A],
    b: &[B],
    out: &mut [C],
    f: F,
) {
    let n = l.inner();
    let [_, sa, sb] = l.inner_strides();
    if n * l.rows() == 0 {
        return;
    }
    l.for_rows(0, l.rows(), |r, [_, oa, ob]| {
        row(&mut out[r * n..(r + 1) * n], a, oa, sa, b, ob, sb, &f);
    });
}

/// Integer PRelu, `x < 0 ? x·slope : x` (wrapping), on the calling thread. (u8 is never below
/// zero: a copy.)
fn prelu_serial<T: Num + crate::tensor::Element>(
    l: &Strided<3>,
    x: &TensorView,
    y: &TensorView,
    out: &mut TensorViewMut,
) {
    let (x, y): (&[T], &[T]) = (x.typed::<T>(), y.typed::<T>());
    let o: &mut [T] = bytemuck::cast_slice_mut(out.data);
    let zero = <T as bytemuck::Zeroable>::zeroed();
    apply_serial(l, x, y, o, |a, b| if a < zero { a.mul(b) } else { a });
}

/// One row: `out[j] = f(a[oa + j·sa], b[ob + j·sb])`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row<A: Copy, B: Copy, C, F: Fn(A, B) -> C>(
    out: &mut [C],
    a: &[A],
    oa: isize,
    sa: isize,
    b: &[B],
    ob: isize,
    sb: isize,
    f: &F,
) {
    let n = out.len();
    let (oa, ob) = (oa as usize, ob as usize);
    match (sa, sb) {
        (1, 1) => {
            for ((o, &x), &y) in out.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]) {
                *o = f(x, y);
            }
        }
        (1, 0) => {
            let y = b[ob];
            for (o, &x) in out.iter_mut().zip(&a[oa..oa + n]) {
                *o = f(x, y);
            }
        }
        (0, 1) => {
            let x = a[oa];
            for (o, &y) in out.iter_mut().zip(&b[ob..ob + n]) {
                *o = f(x, y);
            }
        }
        _ => {
            for (j, o) in out.iter_mut().enumerate() {
                let ia = (oa as isize + j as isize * sa) as usize;
                let ib = (ob as isize + j as isize * sb) as usize;
                *o = f(a[ia], b[ib]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Binary, BinaryOp, Op};
    use crate::Tensor;

    fn bin(op: BinaryOp, a: &Tensor, b: &Tensor) -> Tensor {
        eval(&Op::Binary(Binary { op }), &[a, b]).unwrap().remove(0)
    }

    fn t<T: crate::tensor::Element>(shape: &[usize], v: Vec<T>) -> Tensor {
        Tensor::from_vec(shape, v).unwrap()
    }

    /// Naive numpy-style reference over f32.
    fn reference(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
        let out = crate::ir::ops::broadcast_shapes(&a.shape, &b.shape).unwrap();
        let (av, bv) = (a.to_f32_vec().unwrap(), b.to_f32_vec().unwrap());
        let n: usize = out.iter().product();
        let index = |shape: &[usize], flat: usize| -> usize {
            let mut rem = flat;
            let mut idx = vec![0; out.len()];
            for i in (0..out.len()).rev() {
                idx[i] = rem % out[i];
                rem /= out[i];
            }
            let lead = out.len() - shape.len();
            let mut off = 0;
            for (i, &d) in shape.iter().enumerate() {
                off = off * d + if d == 1 { 0 } else { idx[lead + i] };
            }
            off
        };
        (0..n)
            .map(|i| f(av[index(&a.shape, i)], bv[index(&b.shape, i)]))
            .collect()
    }

    /// Equal element by element, NaN matching NaN.
    fn same(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g == w || (g.is_nan() && w.is_nan()), "[{i}]: {g} vs {w}");
        }
    }

    #[test]
    fn broadcasting_matches_reference() {
        let a = t(&[2, 3, 4], (0..24).map(|v| v as f32).collect());
        let cases = [
            t(&[3, 1], vec![10.0f32, 20.0, 30.0]),
            t(&[], vec![2.5f32]),
            t(&[1], vec![-1.0f32]),
            t(&[4], vec![1.0f32, 2.0, 3.0, 4.0]),
            t(&[2, 1, 4], (0..8).map(|v| v as f32 * 0.5).collect()),
            t(&[2, 3, 4], (0..24).map(|v| 1.0 + v as f32).collect()),
        ];
        type OpRef = (BinaryOp, fn(f32, f32) -> f32);
        for b in &cases {
            let ops: [OpRef; 5] = [
                (BinaryOp::Add, |x, y| x + y),
                (BinaryOp::Sub, |x, y| x - y),
                (BinaryOp::Mul, |x, y| x * y),
                (BinaryOp::Div, |x, y| x / y),
                (BinaryOp::Max, f32::max),
            ];
            for (op, f) in ops {
                let got = bin(op, &a, b);
                assert_eq!(got.shape, vec![2, 3, 4]);
                same(got.as_slice::<f32>().unwrap(), &reference(&a, b, f));
                // And with the operands swapped.
                let got = bin(op, b, &a);
                same(got.as_slice::<f32>().unwrap(), &reference(b, &a, f));
            }
        }
    }

    #[test]
    fn outer_broadcast_both_sides() {
        let a = t(&[3, 1], vec![1.0f32, 2.0, 3.0]);
        let b = t(&[1, 2], vec![10.0f32, 20.0]);
        let got = bin(BinaryOp::Mul, &a, &b);
        assert_eq!(got.shape, vec![3, 2]);
        assert_eq!(
            got.as_slice::<f32>().unwrap(),
            &[10.0, 20.0, 20.0, 40.0, 30.0, 60.0]
        );
    }

    #[test]
    fn per_channel_nchw() {
        let x = t(&[2, 3, 2, 2], (0..24).map(|v| v as f32).collect());
        let c = t(&[3, 1, 1], vec![100.0f32, 200.0, 300.0]);
        let got = bin(BinaryOp::Add, &x, &c);
        assert_eq!(
            got.as_slice::<f32>().unwrap(),
            &reference(&x, &c, |a, b| a + b)[..]
        );
    }

    #[test]
    fn integer_arithmetic() {
        let a = t(&[4], vec![7i64, -7, 9, 5]);
        let b = t(&[4], vec![2i64, 2, -4, 0]);
        assert_eq!(
            bin(BinaryOp::Div, &a, &b).as_slice::<i64>().unwrap(),
            &[3, -3, -2, 0]
        );
        assert_eq!(
            bin(BinaryOp::Mul, &a, &Tensor::scalar(3i64))
                .as_slice::<i64>()
                .unwrap(),
            &[21, -21, 27, 15]
        );
        let a32 = t(&[3], vec![2i32, 3, -2]);
        let b32 = t(&[3], vec![10i32, 2, 3]);
        assert_eq!(
            bin(BinaryOp::Pow, &a32, &b32).as_slice::<i32>().unwrap(),
            &[1024, 9, -8]
        );
        assert_eq!(
            bin(BinaryOp::Sub, &a32, &b32).as_slice::<i32>().unwrap(),
            &[-8, 1, -5]
        );
        assert_eq!(
            bin(BinaryOp::Min, &a32, &b32).as_slice::<i32>().unwrap(),
            &[2, 2, -2]
        );
    }

    #[test]
    fn pow_with_integer_exponent() {
        let x = t(&[3], vec![2.0f32, -3.0, 0.5]);
        let got = bin(BinaryOp::Pow, &x, &Tensor::scalar(3i64));
        assert_eq!(got.as_slice::<f32>().unwrap(), &[8.0, -27.0, 0.125]);
        let got = bin(BinaryOp::Pow, &x, &Tensor::scalar(2.0f32));
        assert_eq!(got.as_slice::<f32>().unwrap(), &[4.0, 9.0, 0.25]);
    }

    #[test]
    fn comparisons_give_bool() {
        let a = t(&[2, 2], vec![1i64, 5, 3, 3]);
        let b = t(&[2], vec![3i64, 3]);
        let eq = bin(BinaryOp::Equal, &a, &b);
        assert_eq!(eq.dtype, crate::DType::Bool);
        assert_eq!(eq.bytes(), &[0, 0, 1, 1]);
        assert_eq!(bin(BinaryOp::Less, &a, &b).bytes(), &[1, 0, 0, 0]);
        assert_eq!(bin(BinaryOp::Greater, &a, &b).bytes(), &[0, 1, 0, 0]);
        let f = t(&[3], vec![0.5f32, f32::NAN, 2.0]);
        assert_eq!(
            bin(BinaryOp::Less, &f, &Tensor::scalar(1.0f32)).bytes(),
            &[1, 0, 0]
        );
        assert_eq!(
            bin(BinaryOp::Equal, &f, &f).bytes(),
            &[1, 0, 1],
            "NaN != NaN"
        );
    }

    /// Runs the kernel directly with several threads on tensors past the parallel threshold.
    #[test]
    fn parallel_paths_match_serial() {
        use crate::cpu::ops::{build, BuildCtx, Ctx};
        use crate::ir::Fact;
        let n = 2 * 3 * 128 * 128;
        let x = t(
            &[2, 3, 128, 128],
            (0..n).map(|v| (v % 1000) as f32).collect(),
        );
        for other in [
            t(&[3, 1, 1], vec![1.0f32, 2.0, 3.0]),
            t(&[2, 3, 128, 128], (0..n).map(|v| (v % 7) as f32).collect()),
            Tensor::scalar(0.5f32),
        ] {
            let want = bin(BinaryOp::Mul, &x, &other);
            let op = Op::Binary(Binary { op: BinaryOp::Mul });
            let facts = [
                Fact::new(x.dtype, x.shape.clone()),
                Fact::new(other.dtype, other.shape.clone()),
            ];
            let outs = op.infer(&facts).unwrap();
            let kernel = build(
                &op,
                &BuildCtx {
                    inputs: &facts,
                    outputs: &outs,
                    consts: &[None, None],
                },
            )
            .unwrap();
            let mut got = Tensor::zeros(outs[0].dtype, &outs[0].shape);
            kernel
                .run(
                    &[x.view(), other.view()],
                    &mut [got.view_mut()],
                    &mut [],
                    &Ctx { threads: 4 },
                )
                .unwrap();
            assert_eq!(got.bytes(), want.bytes());
        }
    }
}

//! CPU kernel for Reduce: Mean, Sum, Max, Min, Prod, L1, L2, SumSquare and LogSumExp over sorted
//! axes.
//!
//! The input is walked once in memory order through a [`Strided`] layout whose second operand is
//! the output with stride 0 on reduced axes: a row along a reduced axis folds into one output
//! element, a row along a kept axis combines element-wise. f32 for every op; i64 and i32 for
//! every op but L2 and LogSumExp (refused by the op's inference).
//!
//! Integer Sum, Mean, Prod, SumSquare and L1 give the exact result saturated to the element
//! type, as onnxruntime (1.32) does: they accumulate in i128 (a scratch row of the outputs) and
//! clamp once at the end, so `|i32::MIN|` is `i32::MAX` and a sum that overflows on the way but
//! ends in range is exact; Mean divides the exact sum, truncating toward zero. (onnxruntime
//! accumulates in f64: for i64 values whose sums pass 2⁵³ its last bits are rounded and depend on
//! its order of summation, where ours stay exact.) Max and Min need no accumulator.

use edgefuse_kernels::strided::{contiguous_strides, Strided};

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{OpInfo as _, Reduce, ReduceOp};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &Reduce, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let ok = match x.dtype {
        DType::F32 => true,
        DType::I64 | DType::I32 => !matches!(op.op, ReduceOp::L2 | ReduceOp::LogSumExp),
        _ => false,
    };
    if !ok || op.axes.iter().any(|&a| a >= x.rank()) {
        return unsupported(format!("{} on {}", op.name(), x.dtype));
    }
    // Output strides over the input's axes: 0 on reduced axes.
    let kept: Vec<usize> = (0..x.rank())
        .map(|i| if op.axes.contains(&i) { 1 } else { x.shape[i] })
        .collect();
    let mut so = contiguous_strides(&kept);
    for &a in &op.axes {
        so[a] = 0;
    }
    let si = contiguous_strides(&x.shape);
    let Some(layout) = Strided::new(&x.shape, [&si, &so]) else {
        return unsupported(format!("{} of rank {}", op.name(), x.rank()));
    };
    let count = op.axes.iter().map(|&a| x.shape[a]).product();
    Ok(Box::new(ReduceKernel {
        op: op.op,
        dtype: x.dtype,
        layout,
        count,
        out_len: kept.iter().product(),
    }))
}

struct ReduceKernel {
    op: ReduceOp,
    dtype: DType,
    /// Operand 0: the input; operand 1: the output.
    layout: Strided<2>,
    /// Elements folded into each output.
    count: usize,
    /// Elements of the output.
    out_len: usize,
}

/// The integer element types, reduced exactly in i128 and clamped back.
trait Int: bytemuck::Pod + Into<i128> {
    fn saturate(v: i128) -> Self;
}

macro_rules! int {
    ($($t:ty),*) => {$(
        impl Int for $t {
            fn saturate(v: i128) -> $t {
                // In range after the clamp, so the conversion cannot fail.
                <$t>::try_from(v.clamp(<$t>::MIN.into(), <$t>::MAX.into())).unwrap_or(<$t>::MAX)
            }
        }
    )*};
}
int!(i64, i32);

/// f32 maximum and minimum: NaN propagates.
fn max_f32(a: f32, v: f32) -> f32 {
    if v > a || v.is_nan() {
        v
    } else {
        a
    }
}

fn min_f32(a: f32, v: f32) -> f32 {
    if v < a || v.is_nan() {
        v
    } else {
        a
    }
}

impl CpuKernel for ReduceKernel {
    fn scratch_bytes(&self) -> usize {
        match (self.op, self.dtype) {
            (ReduceOp::LogSumExp, _) => self.out_len * 4,
            (_, DType::F32) => 0,
            // One i128 per output, and room to align them.
            _ => (self.out_len + 1) * std::mem::size_of::<i128>(),
        }
    }
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (x, out) = (&inputs[0], &mut outputs[0]);
        if self.op == ReduceOp::LogSumExp {
            let sums: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..self.out_len * 4]);
            self.log_sum_exp(x.typed::<f32>(), out.typed::<f32>(), sums);
            return Ok(());
        }
        if self.dtype == DType::F32 {
            self.float(x.typed::<f32>(), out.typed::<f32>());
            return Ok(());
        }
        let (_, wide, _) = bytemuck::pod_align_to_mut::<u8, i128>(scratch);
        let Some(wide) = wide.get_mut(..self.out_len) else {
            return Err(crate::Error::Invalid(format!(
                "{:?} reduction: scratch too small",
                self.op
            )));
        };
        match self.dtype {
            DType::I64 => self.exact(x.typed::<i64>(), out.typed::<i64>(), wide),
            _ => self.exact(x.typed::<i32>(), out.typed::<i32>(), wide),
        }
        Ok(())
    }
}

impl ReduceKernel {
    fn float(&self, x: &[f32], out: &mut [f32]) {
        match self.op {
            ReduceOp::Sum | ReduceOp::Mean => self.fold(x, out, 0.0, |a, v| a + v),
            ReduceOp::Prod => self.fold(x, out, 1.0, |a, v| a * v),
            ReduceOp::Max => self.fold(x, out, f32::NEG_INFINITY, max_f32),
            ReduceOp::Min => self.fold(x, out, f32::INFINITY, min_f32),
            ReduceOp::L2 | ReduceOp::SumSquare => self.fold(x, out, 0.0, |a, v| a + v * v),
            ReduceOp::L1 => self.fold(x, out, 0.0, |a, v| a + v.abs()),
            ReduceOp::LogSumExp => unreachable!("run takes LogSumExp apart"),
        }
        match self.op {
            ReduceOp::Mean => {
                let n = self.count as f32;
                out.iter_mut().for_each(|o| *o /= n);
            }
            ReduceOp::L2 => out.iter_mut().for_each(|o| *o = o.sqrt()),
            _ => {}
        }
    }

    /// An integer reduction: exact in `wide`, then saturated into `out`. Each step is exact or
    /// already past every integer type's range: a sum of at most 2⁴⁰ terms of at most 2⁶³ (Sum,
    /// L1) fits i128; squares (≤ 2¹²⁶) and products saturate at i128's bounds, a product's
    /// with its sign.
    fn exact<T: Int>(&self, x: &[T], out: &mut [T], wide: &mut [i128]) {
        let (init, step): (i128, fn(i128, i128) -> i128) = match self.op {
            ReduceOp::Sum | ReduceOp::Mean => (0, i128::saturating_add),
            ReduceOp::SumSquare => (0, |a, v| a.saturating_add(v.saturating_mul(v))),
            ReduceOp::L1 => (0, |a, v| a.saturating_add(v.saturating_abs())),
            ReduceOp::Prod => (1, i128::saturating_mul),
            ReduceOp::Max => (i128::MIN, Ord::max),
            ReduceOp::Min => (i128::MAX, Ord::min),
            // f32 only (the op's inference refuses them on integers).
            ReduceOp::L2 | ReduceOp::LogSumExp => (0, |a, _| a),
        };
        wide.fill(init);
        self.walk(x, wide, |a, v: T, _| step(a, v.into()));
        let count = i128::try_from(self.count).unwrap_or(i128::MAX);
        for (o, &w) in out.iter_mut().zip(wide.iter()) {
            let w = match self.op {
                ReduceOp::Mean if count == 0 => 0,
                ReduceOp::Mean => w / count,
                _ => w,
            };
            *o = T::saturate(w);
        }
    }

    /// `max + ln(Σ exp(x − max))` per output (the maximum itself where it is ±∞ or NaN).
    fn log_sum_exp(&self, x: &[f32], out: &mut [f32], sums: &mut [f32]) {
        self.fold(x, out, f32::NEG_INFINITY, max_f32);
        sums.fill(0.0);
        self.walk(x, sums, |s, v, o| s + (v - out[o]).exp());
        for (o, s) in out.iter_mut().zip(sums.iter()) {
            if o.is_finite() {
                *o += s.ln();
            }
        }
    }

    /// out[o] = f(…f(f(init, x₀), x₁)…) over the `x` reduced into o, in memory order.
    fn fold(&self, x: &[f32], out: &mut [f32], init: f32, f: impl Fn(f32, f32) -> f32) {
        out.fill(init);
        self.walk(x, out, |acc, v, _| f(acc, v));
    }

    /// `acc[o] = f(acc[o], x, o)` for every `x` reduced into output `o`, in memory order.
    fn walk<T: Copy, A: Copy>(&self, x: &[T], acc: &mut [A], f: impl Fn(A, T, usize) -> A) {
        let out = acc;
        let l = &self.layout;
        let n = l.inner();
        let [sx, so] = l.inner_strides();
        l.for_rows(0, l.rows(), |_, [ox, oo]| {
            let (ox, oo) = (ox as usize, oo as usize);
            let row = &x[ox..ox + n];
            match (sx, so) {
                (1, 0) => {
                    let acc = row.iter().fold(out[oo], |a, &v| f(a, v, oo));
                    out[oo] = acc;
                }
                (1, 1) => {
                    for (j, (o, &v)) in out[oo..oo + n].iter_mut().zip(row).enumerate() {
                        *o = f(*o, v, oo + j);
                    }
                }
                // A layout with one element per row (every axis reduced, or a size-1 input).
                _ => {
                    for j in 0..n {
                        let o = oo + j * so as usize;
                        out[o] = f(out[o], x[ox + j * sx as usize], o);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Reduce, ReduceOp};
    use crate::Tensor;

    fn reduce(x: &Tensor, op: ReduceOp, axes: &[usize], keepdims: bool) -> Tensor {
        let op = Op::Reduce(Reduce {
            op,
            axes: axes.to_vec(),
            keepdims,
        });
        eval(&op, &[x]).unwrap().remove(0)
    }

    /// x[i,j,k] = i*12 + j*4 + k over [2, 3, 4].
    fn x234() -> Tensor {
        Tensor::from_vec(&[2, 3, 4], (0..24).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn sum_mean_over_each_axis_set() {
        let x = x234();
        let s = reduce(&x, ReduceOp::Sum, &[2], false);
        assert_eq!(s.shape, vec![2, 3]);
        assert_eq!(
            s.as_slice::<f32>().unwrap(),
            &[6.0, 22.0, 38.0, 54.0, 70.0, 86.0]
        );
        let s = reduce(&x, ReduceOp::Sum, &[1], true);
        assert_eq!(s.shape, vec![2, 1, 4]);
        assert_eq!(
            s.as_slice::<f32>().unwrap(),
            &[12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0]
        );
        let m = reduce(&x, ReduceOp::Mean, &[0, 2], true);
        assert_eq!(m.shape, vec![1, 3, 1]);
        // Mean of {j*4+k, 12+j*4+k}: 7.5 + 4j.
        assert_eq!(m.as_slice::<f32>().unwrap(), &[7.5, 11.5, 15.5]);
        let all = reduce(&x, ReduceOp::Sum, &[0, 1, 2], false);
        assert_eq!(all.shape, Vec::<usize>::new());
        assert_eq!(all.as_slice::<f32>().unwrap(), &[276.0]);
    }

    #[test]
    fn max_min_prod_l2() {
        let x = Tensor::from_vec(&[2, 3], vec![1.0f32, -4.0, 2.0, 3.0, 0.5, -1.0]).unwrap();
        assert_eq!(
            reduce(&x, ReduceOp::Max, &[1], false)
                .as_slice::<f32>()
                .unwrap(),
            &[2.0, 3.0]
        );
        assert_eq!(
            reduce(&x, ReduceOp::Min, &[0], true)
                .as_slice::<f32>()
                .unwrap(),
            &[1.0, -4.0, -1.0]
        );
        assert_eq!(
            reduce(&x, ReduceOp::Prod, &[1], false)
                .as_slice::<f32>()
                .unwrap(),
            &[-8.0, -1.5]
        );
        let l2 = reduce(&x, ReduceOp::L2, &[0], false);
        let want = [10f32.sqrt(), 16.25f32.sqrt(), 5f32.sqrt()];
        for (g, w) in l2.as_slice::<f32>().unwrap().iter().zip(want) {
            assert!((g - w).abs() < 1e-6);
        }
    }

    #[test]
    fn integers() {
        let x = Tensor::from_vec(&[2, 3], vec![1i64, -4, 2, 3, 5, -1]).unwrap();
        assert_eq!(
            reduce(&x, ReduceOp::Sum, &[1], false)
                .as_slice::<i64>()
                .unwrap(),
            &[-1, 7]
        );
        assert_eq!(
            reduce(&x, ReduceOp::Max, &[0], false)
                .as_slice::<i64>()
                .unwrap(),
            &[3, 5, 2]
        );
        assert_eq!(
            reduce(&x, ReduceOp::Prod, &[0, 1], true)
                .as_slice::<i64>()
                .unwrap(),
            &[120]
        );
        let x32 = Tensor::from_vec(&[3], vec![4i32, -2, 9]).unwrap();
        assert_eq!(
            reduce(&x32, ReduceOp::Min, &[0], false)
                .as_slice::<i32>()
                .unwrap(),
            &[-2]
        );
    }
}

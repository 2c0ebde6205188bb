//! CPU kernel for TopK: along one axis of `[outer, axis, inner]`, the `k` largest (or smallest)
//! values in order and their i64 indices; equal values keep the lower index first, as
//! onnxruntime; NaN counts as larger than every number. The candidates' indices are sorted in
//! scratch, so a run allocates nothing.

use std::cmp::Ordering;

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::TopK;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &TopK, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    if !matches!(x.dtype, DType::F32 | DType::I64 | DType::I32)
        || op.axis >= x.rank()
        || op.k > x.shape[op.axis]
    {
        return unsupported(format!("TopK on {} {:?}", x.dtype, x.shape));
    }
    Ok(Box::new(TopKKernel {
        op: op.clone(),
        dtype: x.dtype,
        outer: x.shape[..op.axis].iter().product(),
        len: x.shape[op.axis],
        inner: x.shape[op.axis + 1..].iter().product(),
    }))
}

struct TopKKernel {
    op: TopK,
    dtype: DType,
    outer: usize,
    len: usize,
    inner: usize,
}

/// A total order in which NaN is above every number (f32), plain order otherwise.
trait Key: Copy {
    fn cmp_key(&self, o: &Self) -> Ordering;
}

impl Key for f32 {
    fn cmp_key(&self, o: &f32) -> Ordering {
        match (self.is_nan(), o.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // -0.0 and 0.0 are equal, as onnxruntime's comparison has them.
            _ => self.partial_cmp(o).expect("no NaN"),
        }
    }
}

impl Key for i64 {
    fn cmp_key(&self, o: &i64) -> Ordering {
        self.cmp(o)
    }
}

impl Key for i32 {
    fn cmp_key(&self, o: &i32) -> Ordering {
        self.cmp(o)
    }
}

impl TopKKernel {
    fn typed<T: Key>(&self, x: &[T], values: &mut [T], indices: &mut [i64], order: &mut [u32]) {
        let (len, inner, k) = (self.len, self.inner, self.op.k);
        let largest = self.op.largest;
        for o in 0..self.outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                for (j, slot) in order.iter_mut().enumerate() {
                    *slot = j as u32;
                }
                // Best first; equal values by index. A stable sort on the value alone would do
                // the same, but an unstable sort with the index as a tie-break allocates nothing.
                let by = |a: u32, b: u32| {
                    let (va, vb) = (x[base + a as usize * inner], x[base + b as usize * inner]);
                    let c = if largest {
                        vb.cmp_key(&va)
                    } else {
                        va.cmp_key(&vb)
                    };
                    c.then(a.cmp(&b))
                };
                best_first(&mut order[..len], k, &by);
                let out_base = o * k * inner + i;
                for (r, &j) in order[..k].iter().enumerate() {
                    values[out_base + r * inner] = x[base + j as usize * inner];
                    indices[out_base + r * inner] = j as i64;
                }
            }
        }
    }
}

/// Puts the `k` best of `order` first, best first, by `by`. Not generic: the sort is compiled
/// once for every element type (the device binary carries it once).
fn best_first(order: &mut [u32], k: usize, by: &dyn Fn(u32, u32) -> Ordering) {
    if k < order.len() {
        order.select_nth_unstable_by(k, |a, b| by(*a, *b));
    }
    order[..k].sort_unstable_by(|a, b| by(*a, *b));
}

impl CpuKernel for TopKKernel {
    fn scratch_bytes(&self) -> usize {
        self.len * 4
    }
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = &inputs[0];
        let order: &mut [u32] = bytemuck::cast_slice_mut(&mut scratch[..self.len * 4]);
        let (vals, idx) = outputs.split_at_mut(1);
        let indices = idx[0].typed::<i64>();
        match self.dtype {
            DType::F32 => self.typed(x.typed::<f32>(), vals[0].typed::<f32>(), indices, order),
            DType::I64 => self.typed(x.typed::<i64>(), vals[0].typed::<i64>(), indices, order),
            _ => self.typed(x.typed::<i32>(), vals[0].typed::<i32>(), indices, order),
        }
        Ok(())
    }
}

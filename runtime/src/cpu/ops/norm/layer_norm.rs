//! CPU kernel for LayerNormalization: rows of the axes from `axis` on, normalised, times the
//! scale, plus the optional bias. A scale or bias with fewer elements than a row (broadcast) is
//! expanded to one full row in the plan's scratch at the start of each run.

use edgefuse_kernels::strided::broadcast_strides;

use super::normalize_rows;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::LayerNorm;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &LayerNorm, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    if x.dtype != DType::F32 || op.axis >= x.rank() {
        return unsupported(format!("LayerNormalization on {}", x.dtype));
    }
    let row_shape = x.shape[op.axis..].to_vec();
    let inner: usize = row_shape.iter().product();
    // Strides of a broadcast parameter over a row; None: it is a full row already.
    let strides = |i: usize| {
        let p = &b.inputs[i];
        (p.len() != inner).then(|| broadcast_strides(&p.shape, &row_shape))
    };
    let scale = strides(1);
    let bias = b.inputs.get(2).map(|_| strides(2));
    let expanded = scale.iter().count() + bias.iter().flatten().count();
    // Nothing to expand (or normalise) when the input is empty.
    let scratch = if x.is_empty() {
        0
    } else {
        expanded * inner * 4
    };
    Ok(Box::new(LayerNormKernel {
        inner,
        eps: op.epsilon,
        row_shape,
        scale,
        bias,
        scratch,
    }))
}

struct LayerNormKernel {
    inner: usize,
    eps: f32,
    /// The shape of one row: the input's axes from `axis` on.
    row_shape: Vec<usize>,
    /// The scale's strides over a row when it broadcasts; None: one value per position.
    scale: Option<Vec<isize>>,
    /// None: no bias; Some(strides): as `scale`.
    bias: Option<Option<Vec<isize>>>,
    scratch: usize,
}

/// Writes `p` broadcast over a row of shape `shape` (its strides `strides`, from offset `at`).
fn expand(p: &[f32], strides: &[isize], shape: &[usize], at: isize, row: &mut [f32]) {
    match (shape, strides) {
        ([], _) => row[0] = p[at as usize],
        ([_], [s]) => {
            for (k, o) in row.iter_mut().enumerate() {
                *o = p[(at + k as isize * s) as usize];
            }
        }
        ([d, shape @ ..], [s, strides @ ..]) => {
            for (k, sub) in row.chunks_mut(row.len() / d).enumerate() {
                expand(p, strides, shape, at + k as isize * s, sub);
            }
        }
        _ => unreachable!("one stride per axis"),
    }
}

impl LayerNormKernel {
    /// A parameter's values for a whole row: its own data, or its expansion into the front of
    /// `free` (which then loses that part).
    fn full_row<'a>(
        &self,
        p: &'a [f32],
        strides: &Option<Vec<isize>>,
        free: &mut &'a mut [f32],
    ) -> &'a [f32] {
        let Some(strides) = strides else { return p };
        let (dst, rest) = std::mem::take(free).split_at_mut(self.inner);
        *free = rest;
        expand(p, strides, &self.row_shape, 0, dst);
        dst
    }
}

impl CpuKernel for LayerNormKernel {
    fn scratch_bytes(&self) -> usize {
        self.scratch
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let out = outputs[0].typed::<f32>();
        if out.is_empty() || self.inner == 0 {
            return Ok(());
        }
        let mut free: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..self.scratch]);
        let scale = self.full_row(inputs[1].typed::<f32>(), &self.scale, &mut free);
        match &self.bias {
            None => normalize_rows(x, out, self.inner, self.eps, ctx.threads, |_, j, v| {
                v * scale[j]
            }),
            Some(strides) => {
                let bias = self.full_row(inputs[2].typed::<f32>(), strides, &mut free);
                normalize_rows(x, out, self.inner, self.eps, ctx.threads, |_, j, v| {
                    v * scale[j] + bias[j]
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{LayerNorm, Op};
    use crate::testing::values;
    use crate::Tensor;

    /// A scale and bias broadcast over a row ([3, 1] and [4] over rows of [2, 3, 4]) give the
    /// result of the same values written out in full.
    #[test]
    fn broadcast_parameters_match_full_rows() {
        let op = Op::LayerNorm(LayerNorm {
            axis: 1,
            epsilon: 1e-5,
        });
        let x = values(&[5, 2, 3, 4], 1);
        let (s, b) = (values(&[3, 1], 2), values(&[4], 3));
        let (sv, bv) = (s.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
        let full = |f: &dyn Fn(usize) -> f32| {
            Tensor::from_vec(&[2, 3, 4], (0..24).map(f).collect()).unwrap()
        };
        let s_full = full(&|j| sv[(j / 4) % 3]);
        let b_full = full(&|j| bv[j % 4]);
        let got = eval(&op, &[&x, &s, &b]).unwrap();
        let want = eval(&op, &[&x, &s_full, &b_full]).unwrap();
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            want[0].as_slice::<f32>().unwrap()
        );
    }
}

//! CPU kernel for LayerNormalization: rows of the axes from `axis` on, normalised, times the
//! scale, plus the optional bias. A scale or bias with fewer elements than a row (broadcast)
//! reads through an index table made at build.

use edgefuse_kernels::strided::{broadcast_strides, contiguous_strides};

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
    let inner_shape = &x.shape[op.axis..];
    let inner: usize = inner_shape.iter().product();
    let index = |i: usize| -> Option<Vec<usize>> {
        let p = &b.inputs[i];
        if p.len() == inner {
            return None;
        }
        // Position j of a row → element of the broadcast parameter.
        let strides = broadcast_strides(&p.shape, inner_shape);
        let row = contiguous_strides(inner_shape);
        Some(
            (0..inner)
                .map(|j| {
                    let mut at = 0isize;
                    for (d, (&s, &r)) in strides.iter().zip(&row).enumerate() {
                        let k = (j / r as usize) % inner_shape[d];
                        at += k as isize * s;
                    }
                    at as usize
                })
                .collect(),
        )
    };
    Ok(Box::new(LayerNormKernel {
        inner,
        eps: op.epsilon,
        scale_at: index(1),
        bias_at: b.inputs.get(2).map(|_| index(2)),
    }))
}

struct LayerNormKernel {
    inner: usize,
    eps: f32,
    /// Where a broadcast scale's value for each position of a row is; None: the row's own.
    scale_at: Option<Vec<usize>>,
    /// None: no bias; Some(None): one value per position of a row.
    bias_at: Option<Option<Vec<usize>>>,
}

impl CpuKernel for LayerNormKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let scale = inputs[1].typed::<f32>();
        let at = |table: &Option<Vec<usize>>, j: usize| table.as_ref().map_or(j, |t| t[j]);
        let out = outputs[0].typed::<f32>();
        match &self.bias_at {
            None => normalize_rows(x, out, self.inner, self.eps, ctx.threads, |_, j, v| {
                v * scale[at(&self.scale_at, j)]
            }),
            Some(bias_at) => {
                let bias = inputs[2].typed::<f32>();
                normalize_rows(x, out, self.inner, self.eps, ctx.threads, |_, j, v| {
                    v * scale[at(&self.scale_at, j)] + bias[at(bias_at, j)]
                })
            }
        }
        Ok(())
    }
}

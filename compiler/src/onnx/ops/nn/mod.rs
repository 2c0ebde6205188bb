//! Convolutional-network ops: Conv, ConvTranspose, pooling, BatchNormalization. `auto_pad` is
//! resolved here into explicit pads.

mod batchnorm;
pub(crate) mod conv;
mod conv_transpose;
mod pool;

use anyhow::{anyhow, bail, Result};

use crate::onnx::{NodeCtx, Registry};

pub fn register(reg: &mut Registry) {
    reg.insert("Conv", conv::conv);
    reg.insert("ConvTranspose", conv_transpose::conv_transpose);
    reg.insert("MaxPool", pool::max_pool);
    reg.insert("AveragePool", pool::average_pool);
    reg.insert("GlobalAveragePool", pool::global_average_pool);
    reg.insert("GlobalMaxPool", pool::global_max_pool);
    reg.insert("BatchNormalization", batchnorm::batch_norm);
}

/// Refuses a window over other than one or two spatial axes: the backends' convolution and
/// pooling kernels (`Window2d`) take 1-D and 2-D windows only, so a `.efm` holding a 3-D one could
/// never run. `what` names the operation ("convolution", "pooling", ...). The CPU kernels keep
/// their own check for files not written by this compiler.
pub(crate) fn check_spatial_rank(what: &str, kernel: &[usize]) -> Result<()> {
    if !(1..=2).contains(&kernel.len()) {
        bail!(
            "{}-D {what} (kernel {kernel:?}) is not supported; 1-D and 2-D are",
            kernel.len()
        );
    }
    Ok(())
}

/// Window attributes shared by Conv and the pools, with `auto_pad` resolved.
pub(crate) struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
}

/// Reads strides/dilations/pads/auto_pad for `spatial` = input's spatial dims and `kernel`.
pub(crate) fn window(ctx: &NodeCtx, spatial: &[usize], kernel: Vec<usize>) -> Result<Window> {
    let s = spatial.len();
    if kernel.len() != s {
        bail!("kernel_shape {kernel:?} does not match {s} spatial dimensions");
    }
    let strides = ctx.usizes_attr("strides", vec![1; s])?;
    let dilations = ctx.usizes_attr("dilations", vec![1; s])?;
    if strides.len() != s || dilations.len() != s {
        bail!("strides {strides:?} / dilations {dilations:?} do not match {s} spatial dimensions");
    }
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        bail!("zero stride, dilation or kernel size");
    }
    let auto_pad = ctx.string("auto_pad", "NOTSET")?;
    let pads = match auto_pad.as_str() {
        "NOTSET" => {
            let p = ctx.usizes_attr("pads", vec![0; 2 * s])?;
            if p.len() != 2 * s {
                bail!("pads {p:?} should have {} entries", 2 * s);
            }
            p
        }
        "VALID" => vec![0; 2 * s],
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut p = vec![0; 2 * s];
            for i in 0..s {
                let out = spatial[i].div_ceil(strides[i]);
                let total = (kernel[i] - 1)
                    .checked_mul(dilations[i])
                    .and_then(|e| e.checked_add(1))
                    .and_then(|eff| (out.saturating_sub(1) * strides[i]).checked_add(eff))
                    .ok_or_else(|| {
                        anyhow!("kernel {kernel:?} with dilations {dilations:?} is too large")
                    })?
                    .saturating_sub(spatial[i]);
                let small = total / 2;
                let (begin, end) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                p[i] = begin;
                p[s + i] = end;
            }
            p
        }
        other => bail!("unknown auto_pad \"{other}\""),
    };
    Ok(Window {
        kernel,
        strides,
        pads,
        dilations,
    })
}

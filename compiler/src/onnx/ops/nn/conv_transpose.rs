//! ConvTranspose, with `output_shape` and `auto_pad` resolved into explicit pads.

use anyhow::{anyhow, bail, Result};
use edgefuse_runtime::ir::ops::nn::transposed_len;
use edgefuse_runtime::ir::ops::{ConvTranspose, Op};

use super::check_spatial_rank;
use crate::onnx::NodeCtx;

pub fn conv_transpose(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(2, 3)?;
    let (x, w) = (ctx.input_fact(0)?, ctx.input_fact(1)?);
    if x.rank() < 3 || w.rank() != x.rank() {
        bail!(
            "input {:?} and weight {:?} must both be [N, C, ...] of the same rank",
            x.shape,
            w.shape
        );
    }
    let s = x.rank() - 2;
    let kernel = ctx.usizes_attr("kernel_shape", w.shape[2..].to_vec())?;
    let strides = ctx.usizes_attr("strides", vec![1; s])?;
    let dilations = ctx.usizes_attr("dilations", vec![1; s])?;
    let output_padding = ctx.usizes_attr("output_padding", vec![0; s])?;
    if kernel.len() != s || strides.len() != s || dilations.len() != s || output_padding.len() != s
    {
        bail!("kernel_shape/strides/dilations/output_padding do not match {s} spatial dimensions");
    }
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        bail!("zero stride, dilation or kernel size");
    }
    check_spatial_rank("transposed convolution", &kernel)?;
    let auto_pad = ctx.string("auto_pad", "NOTSET")?;
    let mut output_shape = ctx.usizes_attr("output_shape", vec![])?;
    if output_shape.len() == s + 2 {
        output_shape = output_shape[2..].to_vec();
    }
    if output_shape.is_empty() && (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        output_shape = (0..s)
            .map(|i| x.shape[2 + i].checked_mul(strides[i]))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow!("strides {strides:?} make the output too large"))?;
    }
    let pads = if !output_shape.is_empty() {
        if output_shape.len() != s {
            bail!("output_shape {output_shape:?} does not match {s} spatial dimensions");
        }
        let mut p = vec![0; 2 * s];
        for i in 0..s {
            let full = transposed_len(
                x.shape[2 + i].max(1),
                kernel[i],
                strides[i],
                dilations[i],
                output_padding[i],
            )
            .map_err(|e| anyhow!("{e}"))?;
            if full < output_shape[i] {
                bail!("output_shape {output_shape:?} is larger than the transposed convolution can produce");
            }
            let total = full - output_shape[i];
            let (begin, end) = if auto_pad == "SAME_UPPER" {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
            };
            p[i] = begin;
            p[s + i] = end;
        }
        p
    } else {
        match auto_pad.as_str() {
            "NOTSET" => ctx.usizes_attr("pads", vec![0; 2 * s])?,
            "VALID" => vec![0; 2 * s],
            other => bail!("unknown auto_pad \"{other}\""),
        }
    };
    if pads.len() != 2 * s {
        bail!("pads {pads:?} should have {} entries", 2 * s);
    }
    let bias = ctx.opt_input(2);
    let op = Op::ConvTranspose(ConvTranspose {
        kernel,
        strides,
        pads,
        dilations,
        output_padding,
        group: ctx.usize_attr("group", 1)?,
        has_bias: bias.is_some(),
    });
    let mut inputs = vec![ctx.input(0)?, ctx.input(1)?];
    inputs.extend(bias);
    ctx.emit_outputs(op, &inputs)
}

//! Convolutional-network ops: Conv, ConvTranspose, pooling, BatchNormalization.
//!
//! Layout is NCHW (NCL for 1-D). Padding is explicit (`auto_pad` is resolved by the importer):
//! `pads = [begin_0, .., begin_{s-1}, end_0, .., end_{s-1}]` as in ONNX.

use serde::{Deserialize, Serialize};

use super::{expect_inputs, Fact, OpInfo, UnaryOp};
use crate::tensor::DType;
use crate::{Error, Result};

/// Largest padded input, stride or dilation a window may have along one axis. No model comes
/// near it, and below it the kernels' index arithmetic (output·stride + tap·dilation − pad)
/// cannot overflow; a file may carry any value.
pub const MAX_WINDOW_EXTENT: usize = 1 << 40;

/// Output length of one spatial axis of a convolution or pooling window.
pub fn conv_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil: bool,
) -> Result<usize> {
    let eff = kernel
        .checked_sub(1)
        .and_then(|k| k.checked_mul(dilation))
        .and_then(|e| e.checked_add(1));
    let padded = input
        .checked_add(pad_begin)
        .and_then(|p| p.checked_add(pad_end));
    let (Some(eff), Some(padded)) = (eff, padded) else {
        return Err(Error::invalid(format!(
            "window {kernel} (dilation {dilation}) or input {input} padded by {pad_begin}+{pad_end} is too large"
        )));
    };
    if padded.max(stride).max(dilation) > MAX_WINDOW_EXTENT {
        return Err(Error::invalid(format!(
            "window stride {stride}, dilation {dilation} or input {input} padded by \
             {pad_begin}+{pad_end} exceeds {MAX_WINDOW_EXTENT}"
        )));
    }
    if kernel == 0 || stride == 0 || dilation == 0 || padded < eff {
        return Err(Error::invalid(format!(
            "window {kernel} (dilation {dilation}, stride {stride}) does not fit input {input} padded by {pad_begin}+{pad_end}"
        )));
    }
    let span = padded - eff;
    let mut out = span / stride + 1;
    if ceil && !span.is_multiple_of(stride) {
        out += 1;
        // The last window must start inside the input or the begin padding.
        if (out - 1) * stride >= input + pad_begin {
            out -= 1;
        }
    }
    Ok(out)
}

fn check_spatial(
    name: &str,
    x: &Fact,
    k: &[usize],
    strides: &[usize],
    pads: &[usize],
    dil: &[usize],
) -> Result<()> {
    let s = k.len();
    if x.rank() != s + 2 || strides.len() != s || dil.len() != s || pads.len() != 2 * s {
        return Err(Error::invalid(format!(
            "{name}: input {:?} with kernel {k:?}, strides {strides:?}, pads {pads:?}, dilations {dil:?} disagree in rank",
            x.shape
        )));
    }
    if x.dtype != DType::F32 {
        return Err(Error::invalid(format!(
            "{name} needs f32 input, got {}",
            x.dtype
        )));
    }
    Ok(())
}

/// Convolution. Inputs: X [N, C, *S], W [M, C/group, *K], optional B [M].
/// `act` is an epilogue activation set by fusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub group: usize,
    pub has_bias: bool,
    /// The fused activation, applied after the bias and the residual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<UnaryOp>,
    /// A residual input (last, shaped like the output) added before the activation: the
    /// `fold_residual_add_into_conv` rule's `act(conv(x) + b + r)`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub residual: bool,
}

impl Conv {
    /// Where the residual input sits: after X, W and the optional bias.
    pub fn residual_index(&self) -> Option<usize> {
        self.residual.then_some(2 + usize::from(self.has_bias))
    }
}

impl OpInfo for Conv {
    fn name(&self) -> &'static str {
        "Conv"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Conv", inputs, 2, 4)?;
        let (x, w) = (&inputs[0], &inputs[1]);
        let want = 2 + usize::from(self.has_bias) + usize::from(self.residual);
        if inputs.len() != want {
            return Err(Error::invalid(format!(
                "Conv with{} bias and with{} residual takes {want} inputs, got {}",
                if self.has_bias { "" } else { "out" },
                if self.residual { "" } else { "out" },
                inputs.len()
            )));
        }
        check_spatial(
            "Conv",
            x,
            &self.kernel,
            &self.strides,
            &self.pads,
            &self.dilations,
        )?;
        let s = self.kernel.len();
        let (c, m) = (x.shape[1], w.shape.first().copied().unwrap_or(0));
        if self.group == 0
            || w.rank() != s + 2
            || c % self.group != 0
            || m % self.group != 0
            || w.shape[1] != c / self.group
            || w.shape[2..] != self.kernel[..]
        {
            return Err(Error::invalid(format!(
                "Conv weight {:?} does not match input {:?} with group {} and kernel {:?}",
                w.shape, x.shape, self.group, self.kernel
            )));
        }
        if self.has_bias && inputs[2].shape != [m] {
            return Err(Error::invalid(format!("Conv bias must be [{m}]")));
        }
        let mut out = vec![x.shape[0], m];
        for i in 0..s {
            out.push(conv_out_len(
                x.shape[2 + i],
                self.kernel[i],
                self.strides[i],
                self.dilations[i],
                self.pads[i],
                self.pads[s + i],
                false,
            )?);
        }
        if let Some(r) = self.residual_index().map(|i| &inputs[i]) {
            if r.shape != out || r.dtype != DType::F32 {
                return Err(Error::invalid(format!(
                    "Conv residual {} {:?} must be f32 {out:?}, the output's shape",
                    r.dtype, r.shape
                )));
            }
        }
        Ok(vec![Fact::new(DType::F32, out)])
    }
}

/// Unpadded output length of one spatial axis of a transposed convolution:
/// `stride·(input − 1) + output_padding + dilation·(kernel − 1) + 1`.
pub fn transposed_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    output_padding: usize,
) -> Result<usize> {
    let len = (|| {
        stride
            .checked_mul(input.checked_sub(1)?)?
            .checked_add(output_padding)?
            .checked_add(kernel.checked_sub(1)?.checked_mul(dilation)?)?
            .checked_add(1)
    })();
    let fits = |v: usize| (1..=MAX_WINDOW_EXTENT).contains(&v);
    len.filter(|&len| fits(len) && fits(stride) && fits(dilation))
        .ok_or_else(|| {
            Error::invalid(format!(
                "transposed window {kernel} (dilation {dilation}, stride {stride}, output \
                 padding {output_padding}) over input {input} has no size, a zero step or \
                 exceeds {MAX_WINDOW_EXTENT}"
            ))
        })
}

/// Transposed convolution. Inputs: X [N, C, *S], W [C, M/group, *K], optional B [M].
/// `output_shape` is resolved by the importer into explicit `pads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvTranspose {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub output_padding: Vec<usize>,
    pub group: usize,
    pub has_bias: bool,
}

impl OpInfo for ConvTranspose {
    fn name(&self) -> &'static str {
        "ConvTranspose"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("ConvTranspose", inputs, 2, 3)?;
        let (x, w) = (&inputs[0], &inputs[1]);
        check_spatial(
            "ConvTranspose",
            x,
            &self.kernel,
            &self.strides,
            &self.pads,
            &self.dilations,
        )?;
        let s = self.kernel.len();
        if self.group == 0
            || w.rank() != s + 2
            || w.shape[0] != x.shape[1]
            || x.shape[1] % self.group != 0
            || w.shape[2..] != self.kernel[..]
            || self.output_padding.len() != s
        {
            return Err(Error::invalid(format!(
                "ConvTranspose weight {:?} does not match input {:?}",
                w.shape, x.shape
            )));
        }
        let Some(m) = w.shape[1].checked_mul(self.group) else {
            return Err(Error::invalid(format!(
                "ConvTranspose group {} is too large",
                self.group
            )));
        };
        if self.has_bias != (inputs.len() == 3) {
            return Err(Error::invalid(
                "ConvTranspose bias presence disagrees with its attributes",
            ));
        }
        let mut out = vec![x.shape[0], m];
        for i in 0..s {
            let full = transposed_len(
                x.shape[2 + i],
                self.kernel[i],
                self.strides[i],
                self.dilations[i],
                self.output_padding[i],
            )?;
            let pads = self.pads[i].saturating_add(self.pads[s + i]);
            if full <= pads {
                return Err(Error::invalid("ConvTranspose pads remove the whole output"));
            }
            out.push(full - pads);
        }
        Ok(vec![Fact::new(DType::F32, out)])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

/// MaxPool / AveragePool over explicit windows. `ceil_mode` is applied to the output shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub ceil_mode: bool,
    /// AveragePool: divide by the full window (true) or by the elements inside the input.
    pub count_include_pad: bool,
}

impl OpInfo for Pool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AveragePool",
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        let x = &inputs[0];
        check_spatial(
            self.name(),
            x,
            &self.kernel,
            &self.strides,
            &self.pads,
            &self.dilations,
        )?;
        let s = self.kernel.len();
        let mut out = x.shape[..2].to_vec();
        for i in 0..s {
            out.push(conv_out_len(
                x.shape[2 + i],
                self.kernel[i],
                self.strides[i],
                self.dilations[i],
                self.pads[i],
                self.pads[s + i],
                self.ceil_mode,
            )?);
        }
        Ok(vec![Fact::new(DType::F32, out)])
    }
}

/// GlobalAveragePool / GlobalMaxPool: [N, C, *S] → [N, C, 1, ..].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalPool {
    pub kind: PoolKind,
}

impl OpInfo for GlobalPool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPool",
            PoolKind::Avg => "GlobalAveragePool",
        }
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs(self.name(), inputs, 1, 1)?;
        let x = &inputs[0];
        if x.rank() < 3 || x.dtype != DType::F32 {
            return Err(Error::invalid(format!(
                "{} needs f32 [N, C, ...], got {:?}",
                self.name(),
                x.shape
            )));
        }
        let mut out = x.shape.clone();
        out[2..].iter_mut().for_each(|d| *d = 1);
        Ok(vec![Fact::new(DType::F32, out)])
    }
}

/// Inference-mode BatchNormalization. Inputs: X [N, C, ...], scale, B, mean, var (each [C]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    pub epsilon: f32,
}

impl OpInfo for BatchNorm {
    fn name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("BatchNormalization", inputs, 5, 5)?;
        let x = &inputs[0];
        if x.rank() < 2 || inputs[1..].iter().any(|p| p.shape != [x.shape[1]]) {
            return Err(Error::invalid(format!(
                "BatchNormalization parameters must be [C] for input {:?}",
                x.shape
            )));
        }
        Ok(vec![x.clone()])
    }
}

//! Input preprocessing: camera frame → model input, as one fused step.
//!
//! - [`spec`]: the recipe (`PreprocessSpec`), stored in the `.efm` by `compile --preprocess`,
//!   parsed from presets (`imagenet`, `efficientnet_lite0`, `mobilenet`, `inception`, `mnist`) or
//!   the explicit form `resize=256,crop=224,mean=127,std=128,color=rgb,layout=nchw,fit=crop`.
//! - [`pixel`]: the per-pixel math (YUV → RGB, gray, normalisation, element types) that every
//!   backend must reproduce exactly.
//! - [`geometry`]: which source pixels each output pixel samples, with what weights.
//! - [`cpu`]: the fused, threaded, allocation-free CPU implementation.
//!
//! Order of operations: colour conversion → resize (bilinear or area) → centre crop or letterbox
//! → normalise → layout (NCHW/NHWC) → element type (f32, f16, u8/i8). Only the source pixels the
//! resampling taps name are converted. Boundary: frames come from `capture`; the result is the
//! bytes of the model's input tensor.

pub mod cpu;
pub mod geometry;
pub mod pixel;
pub mod spec;

pub use cpu::{CpuPreprocessor, Target};
pub use spec::{Color, Fit, Interp, Layout, PreprocessSpec, PRESETS};

//! CPU kernels of the quant family.

pub mod dequantize;
pub mod quantize;

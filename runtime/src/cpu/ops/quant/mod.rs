//! CPU kernels of the quant family: QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear;
//! the int8 compute ops (`QConv`, `QGemm`, `QAdd`, `QPool`) built on `edgefuse_kernels::qgemm`;
//! the weight-only int8 ops (`QLstm`, `QGru` with dynamically quantized activations, `QGather`)
//! and `DynamicQuantizeMatMul` / `DynamicQuantizeConv` (X quantized per run, as
//! DynamicQuantizeLinear does; the convolution on QConv's kernel).

pub mod dequantize;
pub mod dynamic_conv;
pub mod dynamic_matmul;
pub mod dynamic_quantize;
pub mod qadd;
pub mod qconv;
pub mod qgather;
pub mod qgemm;
pub mod qgru;
pub mod qlstm;
pub mod qpool;
mod qrnn;
pub mod quantize;
mod requant;

#[cfg(test)]
mod qconv_tests;
#[cfg(test)]
mod qlstm_tests;

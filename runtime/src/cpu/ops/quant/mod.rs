//! CPU kernels of the quant family: QuantizeLinear/DequantizeLinear, and the int8 compute ops
//! (`QConv`, `QGemm`, `QAdd`, `QPool`) built on `edgefuse_kernels::qgemm`.

pub mod dequantize;
pub mod qadd;
pub mod qconv;
pub mod qgemm;
pub mod qpool;
pub mod quantize;
mod requant;

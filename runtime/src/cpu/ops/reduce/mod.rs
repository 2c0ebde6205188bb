//! CPU kernels of the reduce family.

#[allow(
    clippy::module_inception,
    reason = "reduce/reduce.rs holds the Reduce* kernels beside reduce/softmax.rs"
)]
pub mod reduce;
pub mod softmax;

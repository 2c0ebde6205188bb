//! CPU kernels of the reduce family: reductions, ArgMax/ArgMin, TopK, CumSum, Softmax.

pub mod arg;
pub mod cumsum;
#[allow(
    clippy::module_inception,
    reason = "reduce/reduce.rs holds the Reduce* kernels beside reduce/softmax.rs"
)]
pub mod reduce;
pub mod softmax;
pub mod topk;

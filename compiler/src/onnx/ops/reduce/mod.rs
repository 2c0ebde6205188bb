//! Reductions (ReduceMean/Sum/Max/Min/Prod/L2) and Softmax/LogSoftmax.

#[allow(
    clippy::module_inception,
    reason = "reduce/reduce.rs holds the Reduce* importers beside reduce/softmax.rs"
)]
mod reduce;
mod softmax;

use edgefuse_runtime::ir::ops::ReduceOp;

use crate::onnx::Registry;

pub fn register(reg: &mut Registry) {
    // ReduceSum's axes became an input at opset 13, the others' at 18.
    reg.insert("ReduceMean", |c| reduce::reduce(c, ReduceOp::Mean, 18));
    reg.insert("ReduceSum", |c| reduce::reduce(c, ReduceOp::Sum, 13));
    reg.insert("ReduceMax", |c| reduce::reduce(c, ReduceOp::Max, 18));
    reg.insert("ReduceMin", |c| reduce::reduce(c, ReduceOp::Min, 18));
    reg.insert("ReduceProd", |c| reduce::reduce(c, ReduceOp::Prod, 18));
    reg.insert("ReduceL2", |c| reduce::reduce(c, ReduceOp::L2, 18));
    reg.insert("Softmax", |c| softmax::softmax(c, false));
    reg.insert("LogSoftmax", |c| softmax::softmax(c, true));
}

//! Reductions (ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSumExp), ArgMax/ArgMin, TopK,
//! CumSum and Softmax/LogSoftmax.

mod arg;
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
    reg.insert("ReduceL1", |c| reduce::reduce(c, ReduceOp::L1, 18));
    reg.insert("ReduceSumSquare", |c| {
        reduce::reduce(c, ReduceOp::SumSquare, 18)
    });
    reg.insert("ReduceLogSumExp", |c| {
        reduce::reduce(c, ReduceOp::LogSumExp, 18)
    });
    reg.insert("ArgMax", |c| arg::arg(c, true));
    reg.insert("ArgMin", |c| arg::arg(c, false));
    reg.insert("TopK", arg::topk);
    reg.insert("CumSum", arg::cumsum);
    reg.insert("Softmax", |c| softmax::softmax(c, false));
    reg.insert("LogSoftmax", |c| softmax::softmax(c, true));
}

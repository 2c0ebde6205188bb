"""ReduceL1, ReduceL2, ReduceSumSquare and ReduceLogSumExp: axes as the attribute (opset 13)
and as a constant input (opset 18), keepdims, negative axes, all axes, noop_with_empty_axes;
integer L1 and SumSquare past their type's range, which onnxruntime saturates (values chosen
where its f64 accumulation is exact)."""

import numpy as np

from gen import Case, single, rand, ints


def i64(v):
    return np.array(v, dtype=np.int64)


def cases():
    x = rand(80, (2, 3, 4), -3, 3)
    out = []
    for op in ("ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"):
        low = op[len("Reduce"):].lower()
        out += [
            single(f"{low}_attr_axes_opset13", op, {"x": x}, {"axes": [1]}, opset=13),
            single(f"{low}_attr_negative_no_keepdims", op, {"x": x},
                   {"axes": [-1, 0], "keepdims": 0}, opset=13),
            single(f"{low}_all_axes_opset13", op, {"x": x}, opset=13),
            single(f"{low}_input_axes_opset18", op, {"x": x}, consts={"a": i64([0, 2])},
                   opset=18),
            single(f"{low}_input_axes_no_keepdims", op, {"x": x}, {"keepdims": 0},
                   consts={"a": i64([-2])}, opset=18),
            single(f"{low}_no_axes_opset18", op, {"x": x}, opset=18),
            single(f"{low}_empty_axes_noop", op, {"x": x}, {"noop_with_empty_axes": 1},
                   consts={"a": i64(np.zeros(0))}, opset=18),
        ]
    out += [
        single("logsumexp_large_values", "ReduceLogSumExp",
               {"x": np.array([[1000, 1000, -1000], [-1e30, 0, 80], [88, 89, 90]], np.float32)},
               {"axes": [1]}, opset=13),
        single("l1_int64", "ReduceL1", {"x": ints(81, (3, 4), -5, 5)}, {"axes": [1]}, opset=13),
        single("sumsquare_int32", "ReduceSumSquare", {"x": ints(82, (3, 4), -5, 5, np.int32)},
               {"axes": [0], "keepdims": 0}, opset=13),
        single("sumsquare_int32_saturates", "ReduceSumSquare",
               {"x": np.array([[46341, 0, 1], [30000, 30000, 30000], [46340, 0, 0],
                               [-2**31, 0, 0]], np.int32)}, {"axes": [1]}, opset=13),
        single("sumsquare_int32_saturates_kept_inner", "ReduceSumSquare",
               {"x": np.array([[46341, 3, -2**31], [1, 4, 0]], np.int32)},
               {"axes": [0], "keepdims": 0}, opset=13),
        single("l1_int32_saturates", "ReduceL1",
               {"x": np.array([[-2**31, 0, 0], [2**31 - 1, 1, 0], [2**30, 2**30, -1],
                               [-5, 7, 2**30]], np.int32)}, consts={"a": i64([-1])}, opset=18),
        single("sumsquare_int64_saturates", "ReduceSumSquare",
               {"x": np.array([[3037000500, 0], [-2**63, 1], [5, -6], [2**26, 2**26]], np.int64)},
               {"axes": [1], "keepdims": 0}, opset=13),
        single("l1_int64_saturates", "ReduceL1",
               {"x": np.array([[-2**63, 0], [2**62, 2**62], [2**62, -2**62], [-7, 3]], np.int64)},
               {"axes": [1]}, opset=13),
    ]
    return out

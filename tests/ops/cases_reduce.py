"""Reductions: every Reduce* with axes as attribute (before opset 13, or 18 for all but
ReduceSum) and as input, negative axes, keepdims 0/1, axes omitted (all), and
noop_with_empty_axes; integer Sum, Mean and Prod past their type's range, which onnxruntime
saturates (values chosen where its f64 accumulation is exact)."""

import numpy as np

from gen import single, rand, ints


def i64(*v):
    return np.array(v, np.int64)


def cases():
    x = rand(1, (2, 3, 4, 5), -2, 2)
    out = []
    for op, since in [("ReduceSum", 13), ("ReduceMean", 18), ("ReduceMax", 18), ("ReduceMin", 18),
                      ("ReduceProd", 18), ("ReduceL2", 18)]:
        lo = op[len("Reduce"):].lower()
        old = 11 if since == 13 else 13
        data = x if op != "ReduceProd" else rand(2, (2, 3, 4, 5), 0.6, 1.5)
        out += [
            single(f"reduce_{lo}_attr_axes", op, {"x": data}, {"axes": [1, -1]}, opset=old),
            single(f"reduce_{lo}_attr_keepdims0", op, {"x": data}, {"axes": [-2], "keepdims": 0},
                   opset=old),
            single(f"reduce_{lo}_attr_all", op, {"x": data}, opset=old),
            single(f"reduce_{lo}_attr_all_keepdims0", op, {"x": data}, {"keepdims": 0}, opset=old),
            single(f"reduce_{lo}_input_axes", op, {"x": data}, consts={"a": i64(0, 2)}, opset=since),
            single(f"reduce_{lo}_input_keepdims0", op, {"x": data}, {"keepdims": 0},
                   consts={"a": i64(-1, 1)}, opset=since),
            single(f"reduce_{lo}_input_omitted", op, {"x": data}, {"keepdims": 0}, opset=since),
            single(f"reduce_{lo}_noop_empty_axes", op, {"x": data}, {"noop_with_empty_axes": 1},
                   opset=since),
            single(f"reduce_{lo}_noop_given_axes", op, {"x": data}, {"noop_with_empty_axes": 1},
                   consts={"a": i64(3)}, opset=since),
            single(f"reduce_{lo}_empty_axes_input", op, {"x": data}, consts={"a": i64()},
                   opset=since),
        ]
    out += [
        single("reduce_sum_int64", "ReduceSum", {"x": ints(3, (3, 4), -9, 9)},
               consts={"a": i64(1)}, opset=13),
        single("reduce_max_int64", "ReduceMax", {"x": ints(4, (3, 4), -9, 9)}, {"axes": [0]},
               opset=13),
        single("reduce_min_int32", "ReduceMin", {"x": ints(5, (3, 4), -9, 9, np.int32)},
               {"axes": [1], "keepdims": 0}, opset=13),
        single("reduce_mean_1d", "ReduceMean", {"x": rand(6, (7,))}, {"keepdims": 0}, opset=13),
        single("reduce_max_neg_inf_like", "ReduceMax", {"x": rand(7, (3, 4), -1e30, -1e29)},
               {"axes": [1]}, opset=13, rtol=1e-6),
        single("reduce_sum_three_axes", "ReduceSum", {"x": x}, consts={"a": i64(0, -1, 2)},
               opset=13),
        single("reduce_sum_int32_saturates", "ReduceSum",
               {"x": np.array([[2**31 - 1, 1, 0], [2**31 - 1, 1, -1], [-2**31, -1, 0],
                               [2**30, 2**30, 2**30]], np.int32)}, consts={"a": i64(1)}, opset=13),
        single("reduce_sum_int64_saturates", "ReduceSum",
               {"x": np.array([[2**62, 2**62, -2**62], [-2**63, -1, 0], [2**62, 2**62, 0]],
                              np.int64)}, consts={"a": i64(1)}, opset=13),
        single("reduce_mean_int32_wide_sum", "ReduceMean",
               {"x": np.array([[2**31 - 1, 2**31 - 1, -7], [-2**31, -2**31, 1], [-7, 2, 0]],
                              np.int32)}, {"axes": [1]}, opset=13),
        single("reduce_prod_int32_saturates", "ReduceProd",
               {"x": np.array([[65536, 65536, 1], [65536, -65536, 1], [65536, 65536, 0],
                               [-3, 5, 7]], np.int32)}, {"axes": [1], "keepdims": 0}, opset=13),
        single("reduce_prod_int64_saturates", "ReduceProd",
               {"x": np.array([[2**32, 2**32, 1], [2**31, -2**32, 1], [-3, 5, 7]], np.int64)},
               {"axes": [1], "keepdims": 0}, opset=13),
    ]
    return out

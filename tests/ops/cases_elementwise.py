"""Element-wise operators: unary math and activations with their attributes, binary arithmetic
with every kind of broadcast, comparisons and Not, Where, the variadic Min/Max/Mean/Sum, Clip in
its opset 6 (attributes) and 11+ (inputs) forms, and Cast between every supported type."""

import numpy as np

from gen import single, rand, ints


def edges():
    """Values at rounding and sign edges, then random ones: 60 in all, as [3, 4, 5]."""
    e = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -3.5, 0.0, -0.0, 0.49999997, -0.49999997,
         1.0, -1.0, 2.0, 1e-7, -1e-7, 4.5, 100.5, -100.5]
    return np.concatenate([np.array(e, np.float32), rand(7, (40,), -4, 4)]).reshape(3, 4, 5)


def cases():
    x = edges()
    pos = rand(11, (3, 4, 5), 0.01, 5.0)
    out = []
    for op in ["Abs", "Neg", "Ceil", "Floor", "Round", "Exp", "Sigmoid", "Tanh", "Relu",
               "Softplus", "HardSwish", "Identity"]:
        out.append(single(op.lower(), op, {"x": x}))
    for op in ["Sqrt", "Log", "Reciprocal"]:
        out.append(single(op.lower(), op, {"x": pos}))
    out += [
        single("erf", "Erf", {"x": x}, rtol=1e-5, atol=1e-6),
        single("mish", "Mish", {"x": x}, opset=18),
        single("gelu_none", "Gelu", {"x": x}, opset=20),
        single("gelu_tanh", "Gelu", {"x": x}, {"approximate": "tanh"}, opset=20),
        single("elu_default", "Elu", {"x": x}),
        single("elu_alpha", "Elu", {"x": x}, {"alpha": 0.3}),
        single("leaky_relu_default", "LeakyRelu", {"x": x}),
        single("leaky_relu_alpha", "LeakyRelu", {"x": x}, {"alpha": 0.2}),
        single("hard_sigmoid_default", "HardSigmoid", {"x": x}),
        single("hard_sigmoid_alpha_beta", "HardSigmoid", {"x": x}, {"alpha": 1 / 6, "beta": 0.5}),
        # Opsets before 11 are refused as a whole, naming the opset.
        single("dropout_opset7", "Dropout", {"x": x}, {"ratio": 0.3}, opset=7, error="opset 7"),
        single("dropout_mask", "Dropout", {"x": x}, outputs=2, opset=13),
        single("dropout_ratio_input", "Dropout", {"x": x},
               consts={"r": np.array(0.5, np.float32)}, opset=13),
    ]
    # Binary arithmetic: same shape, rank-changing broadcast, scalar, both sides broadcast.
    a = rand(1, (2, 3, 4))
    b_pos = rand(2, (2, 3, 4), 0.5, 2.0)
    for op in ["Add", "Sub", "Mul", "Div"]:
        lo = op.lower()
        out += [
            single(f"{lo}_same", op, {"a": a, "b": b_pos}),
            single(f"{lo}_rank_change", op, {"a": a, "b": rand(3, (4,), 0.5, 2.0)}),
            single(f"{lo}_scalar_rhs", op, {"a": a}, consts={"b": np.array(1.5, np.float32)}),
            single(f"{lo}_scalar_lhs", op, {"b": b_pos}, consts={"a": np.array(-3.0, np.float32)},
                   order=["a", "b"]),
            single(f"{lo}_both_broadcast", op, {"a": rand(4, (2, 1, 4)), "b": rand(5, (3, 1), 0.5, 2)}),
            single(f"{lo}_int64", op, {"a": ints(6, (2, 3, 4), -20, 20)},
                   consts={"b": np.array([3, -3, 7, -2], np.int64)}),
            single(f"{lo}_int32", op, {"a": ints(7, (3, 4), -20, 20, np.int32),
                                       "b": ints(8, (3, 1), 1, 5, np.int32)}),
        ]
    out += [
        single("div_int64_truncates", "Div",
               {"a": np.array([7, -7, 7, -7, 0, 9], np.int64),
                "b": np.array([2, 2, -2, -2, 3, -4], np.int64)}),
        single("pow_float_int_exponent", "Pow", {"a": x}, consts={"b": np.array(3.0, np.float32)}),
        single("pow_square", "Pow", {"a": x}, consts={"b": np.array(2.0, np.float32)}),
        single("pow_sqrt_of_negative", "Pow", {"a": x}, consts={"b": np.array(0.5, np.float32)}),
        single("pow_broadcast", "Pow", {"a": pos, "b": rand(12, (5,), -2, 2)}),
        single("pow_negative_exponent", "Pow", {"a": x}, consts={"b": np.array(-1.0, np.float32)}),
        single("pow_int64_exponent", "Pow", {"a": x}, consts={"b": np.array(3, np.int64)}),
        single("pow_int64", "Pow", {"a": np.array([-3, -2, -1, 0, 1, 2, 3, 5], np.int64)},
               consts={"b": np.array(3, np.int64)}),
        single("pow_int64_base_float_exp", "Pow", {"a": np.array([-3, -2, 0, 2, 3], np.int64)},
               consts={"b": np.array(2.5, np.float32)}, error="integer base"),
    ]
    # Comparisons and logic.
    ca, cb = ints(20, (3, 4), -2, 3).astype(np.float32), ints(21, (4,), -2, 3).astype(np.float32)
    for op in ["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"]:
        lo = op.lower()
        out += [
            single(f"{lo}_f32", op, {"a": ca, "b": cb}, opset=16),
            single(f"{lo}_i64_scalar", op, {"a": ints(22, (3, 4), -2, 3)},
                   consts={"b": np.array(0, np.int64)}, opset=16),
        ]
    boolean = ints(23, (3, 4), 0, 2).astype(bool)
    out += [
        single("equal_bool", "Equal", {"a": boolean, "b": ints(24, (4,), 0, 2).astype(bool)}),
        single("not", "Not", {"x": boolean}),
        single("where_broadcast", "Where",
               {"c": ints(25, (3, 1), 0, 2).astype(bool), "a": rand(26, (4,)), "b": rand(27, (2, 1, 1))}),
        single("where_int64", "Where",
               {"c": boolean, "a": ints(28, (3, 4), -9, 9)}, consts={"b": np.array(-1, np.int64)}),
        single("where_from_comparison_scalar", "Where",
               {"c": np.array(True), "a": rand(29, (2, 3)), "b": rand(30, (2, 3))}),
    ]
    # Variadic.
    v1, v2, v3 = rand(31, (2, 3, 4)), rand(32, (3, 1)), rand(33, (4,))
    for op in ["Min", "Max", "Mean", "Sum"]:
        lo = op.lower()
        out += [
            single(f"{lo}_one", op, {"a": v1}),
            single(f"{lo}_two_broadcast", op, {"a": v1, "b": v2}),
            single(f"{lo}_three_broadcast", op, {"a": v3, "b": v2, "c": v1}),
        ]
    out += [
        single("max_int64", "Max", {"a": ints(34, (3, 4), -9, 9), "b": ints(35, (4,), -9, 9)}),
        single("min_int32", "Min", {"a": ints(36, (3, 4), -9, 9, np.int32), "b": ints(37, (3, 1), -9, 9, np.int32)}),
    ]
    # Clip.
    out += [
        single("clip_opset6_attrs", "Clip", {"x": x}, {"min": -1.0, "max": 2.0}, opset=6,
               error="opset 6"),
        single("clip_opset6_default", "Clip", {"x": x}, {"max": 0.5}, opset=6, error="opset 6"),
        single("clip_min_max_inputs", "Clip", {"x": x},
               consts={"lo": np.array(-1.5, np.float32), "hi": np.array(1.5, np.float32)}, opset=13),
        single("clip_min_only", "Clip", {"x": x}, consts={"lo": np.array(0.0, np.float32)},
               opset=13),
        single("clip_max_only", "Clip", {"x": x}, consts={"hi": np.array(6.0, np.float32)},
               order=["x", None, "hi"], opset=13),
        single("clip_none", "Clip", {"x": x}, opset=13),
        single("clip_opset11", "Clip", {"x": x},
               consts={"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)}, opset=11),
        single("clip_int64", "Clip", {"x": ints(38, (3, 4), -9, 9)},
               consts={"lo": np.array(-3, np.int64), "hi": np.array(4, np.int64)}, opset=13),
        single("clip_min_above_max", "Clip", {"x": x},
               consts={"lo": np.array(1.0, np.float32), "hi": np.array(-1.0, np.float32)}, opset=13),
    ]
    # Cast (no NaN, values inside each target's range).
    small = np.array([-3.7, -2.5, -1.5, -0.5, -0.0, 0.0, 0.4, 0.5, 1.5, 2.5, 3.9, 100.2], np.float32)
    unsigned = np.array([0.0, 0.4, 0.5, 0.9, 1.5, 2.5, 3.9, 100.2, 254.9, 255.0, 7.0, 1.0], np.float32)
    out += [
        single("cast_f32_i64", "Cast", {"x": small}, {"to": 7}),
        single("cast_f32_i32", "Cast", {"x": small}, {"to": 6}),
        single("cast_f32_i8", "Cast", {"x": small}, {"to": 3}),
        single("cast_f32_u8", "Cast", {"x": unsigned}, {"to": 2}),
        single("cast_f32_bool", "Cast", {"x": small}, {"to": 9}),
        single("cast_bool_f32", "Cast", {"x": boolean}, {"to": 1}),
        single("cast_bool_i64", "Cast", {"x": boolean}, {"to": 7}),
        single("cast_i64_f32", "Cast", {"x": ints(39, (3, 4), -1000, 1000)}, {"to": 1}),
        single("cast_i32_f32", "Cast", {"x": ints(40, (3, 4), -1000, 1000, np.int32)}, {"to": 1}),
        single("cast_u8_f32", "Cast", {"x": ints(41, (3, 4), 0, 256, np.uint8)}, {"to": 1}),
        single("cast_i8_f32", "Cast", {"x": ints(42, (3, 4), -128, 128, np.int8)}, {"to": 1}),
        single("cast_i64_i32", "Cast", {"x": ints(43, (3, 4), -1000, 1000)}, {"to": 6}),
        single("cast_i32_i64", "Cast", {"x": ints(44, (3, 4), -1000, 1000, np.int32)}, {"to": 7}),
        single("cast_i64_bool", "Cast", {"x": ints(45, (3, 4), -2, 3)}, {"to": 9}),
        single("cast_f32_f32", "Cast", {"x": small}, {"to": 1}),
        single("cast_opset6", "Cast", {"x": small}, {"to": 7}, opset=6, error="opset 6"),
    ]
    return out

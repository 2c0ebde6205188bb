"""QuantizeLinear / DequantizeLinear: per-tensor and per-axis, u8 and i8, zero point omitted,
rounding half to even and saturation."""

import numpy as np

from gen import single, rand, ints


def cases():
    # Values whose x / scale land exactly on .5 and far outside the range.
    half = np.array([-300.0, -129.0, -128.5, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.5, 127.5,
                     128.5, 254.5, 255.5, 300.0, -0.49, 0.51], np.float32)
    x = np.concatenate([half, rand(1, (42,), -3, 3)]).reshape(3, 4, 5)
    out = []
    for dt, zp in [(np.uint8, 128), (np.int8, -3)]:
        name = "u8" if dt == np.uint8 else "i8"
        out += [
            single(f"quantize_{name}_per_tensor", "QuantizeLinear", {"x": x},
                   consts={"s": np.array(1.0, np.float32), "z": np.array(zp, dt)}),
            single(f"quantize_{name}_scale_quarter", "QuantizeLinear", {"x": x},
                   consts={"s": np.array(0.25, np.float32), "z": np.array(zp, dt)}),
            single(f"quantize_{name}_per_axis1", "QuantizeLinear", {"x": x},
                   consts={"s": np.array([0.5, 1.0, 0.02, 2.0], np.float32),
                           "z": np.array([zp, 0, 1, zp // 2], dt)}, opset=13),
            single(f"quantize_{name}_per_axis_neg1", "QuantizeLinear", {"x": x}, {"axis": -1},
                   consts={"s": np.array([0.5, 1.0, 0.02, 2.0, 0.1], np.float32),
                           "z": np.array([zp, 0, 1, zp // 2, 5], dt)}, opset=13),
            single(f"quantize_{name}_per_axis0", "QuantizeLinear", {"x": x}, {"axis": 0},
                   consts={"s": np.array([0.5, 1.0, 0.02], np.float32),
                           "z": np.array([zp, 0, 1], dt)}, opset=13),
            single(f"dequantize_{name}_per_tensor", "DequantizeLinear",
                   {"x": ints(2, (3, 4, 5), np.iinfo(dt).min, np.iinfo(dt).max + 1, dt)},
                   consts={"s": np.array(0.05, np.float32), "z": np.array(zp, dt)}),
            single(f"dequantize_{name}_per_axis", "DequantizeLinear",
                   {"x": ints(3, (3, 4, 5), np.iinfo(dt).min, np.iinfo(dt).max + 1, dt)},
                   consts={"s": np.array([0.5, 1.0, 0.02, 2.0], np.float32),
                           "z": np.array([zp, 0, 1, zp // 2], dt)}, opset=13),
            single(f"dequantize_{name}_per_axis_neg2", "DequantizeLinear",
                   {"x": ints(4, (3, 4, 5), np.iinfo(dt).min, np.iinfo(dt).max + 1, dt)},
                   {"axis": -2}, consts={"s": np.array([0.5, 1.0, 0.02, 2.0], np.float32)},
                   opset=13),
            single(f"qdq_{name}_roundtrip", "QuantizeLinear", {"x": x},
                   consts={"s": np.array(0.1, np.float32), "z": np.array(zp, dt)}),
        ]
    out += [
        single("quantize_no_zero_point", "QuantizeLinear", {"x": x},
               consts={"s": np.array(0.5, np.float32)}),
        single("dequantize_no_zero_point_u8", "DequantizeLinear",
               {"x": ints(5, (3, 4), 0, 256, np.uint8)}, consts={"s": np.array(0.5, np.float32)}),
        single("dequantize_int32", "DequantizeLinear", {"x": ints(6, (3, 4), -1000, 1000, np.int32)},
               consts={"s": np.array(0.01, np.float32)}),
        single("quantize_runtime_scale", "QuantizeLinear",
               {"x": x, "s": np.array(0.5, np.float32)}),
        single("quantize_block_size", "QuantizeLinear", {"x": rand(7, (4, 4))},
               {"axis": 1, "block_size": 2},
               consts={"s": np.full((4, 2), 0.1, np.float32), "z": np.zeros((4, 2), np.uint8)},
               opset=21, error="block_size"),
    ]
    # A QDQ pair the compiler may fold; the float result must still match.
    from onnx import helper
    from gen import Case
    out.append(Case("qdq_pair_u8", [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ], {"x": x}, ["y"], consts={"s": np.array(0.02, np.float32), "z": np.array(100, np.uint8)}))
    out.append(Case("qdq_pair_i8_per_axis", [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1),
    ], {"x": x}, ["y"], consts={"s": np.array([0.5, 1.0, 0.02, 2.0], np.float32),
                                "z": np.array([0, 0, 0, 0], np.int8)}, opset=13))
    return out

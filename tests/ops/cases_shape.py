"""Shape and data movement: Reshape, Flatten, Transpose, Squeeze/Unsqueeze and Split (axes as
attribute before opset 13, as input from 13), Concat, Slice, Gather, Expand, Pad, and the ops that
edgefuse resolves to constants (Shape, Size, Range, ConstantOfShape, Constant)."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from gen import Case, single, rand, ints

I64 = np.int64
MAX = np.iinfo(np.int64).max
MIN = np.iinfo(np.int64).min


def i64(*v):
    return np.array(v, I64)


def cases():
    x = rand(1, (2, 3, 4, 5))
    out = []
    # Reshape.
    for name, shape, kw in [
        ("reshape_minus1", i64(6, -1), {}),
        ("reshape_zero_copies", i64(0, 3, -1), {}),
        ("reshape_zero_and_minus1", i64(0, 0, -1), {}),
        ("reshape_flat", i64(-1), {}),
        ("reshape_rank_up", i64(2, 3, 2, 2, 5), {}),
        ("reshape_allowzero_off", i64(0, 12, 5), {"opset": 14}),
    ]:
        out.append(single(name, "Reshape", {"x": x}, consts={"s": shape}, **kw))
    out += [
        single("reshape_allowzero_on", "Reshape", {"x": x}, {"allowzero": 1},
               consts={"s": i64(2, 3, 20)}, opset=14),
        Case("reshape_allowzero_empty",
             [helper.make_node("Reshape", ["e", "s"], ["r"], allowzero=1),
              helper.make_node("Shape", ["r"], ["y"]), helper.make_node("Identity", ["x"], ["z"])],
             {"x": rand(2, (2,))}, ["y", "z"],
             consts={"e": np.zeros((2, 0, 3), np.float32), "s": i64(3, 0)}, opset=14),
    ]
    # Flatten.
    for axis in [0, 1, 2, 4, -1, -3]:
        out.append(single(f"flatten_axis{axis}".replace("-", "neg"), "Flatten", {"x": x},
                          {"axis": axis}))
    out.append(single("flatten_default", "Flatten", {"x": x}))
    # Transpose.
    for perm in [None, [0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 2, 3], [3, 2, 1, 0], [0, 1, 3, 2]]:
        name = "transpose_default" if perm is None else "transpose_" + "".join(map(str, perm))
        out.append(single(name, "Transpose", {"x": x}, {} if perm is None else {"perm": perm}))
    out.append(single("transpose_keeps_order_of_long_dims", "Transpose", {"x": rand(2, (1, 6, 1, 4))},
                      {"perm": [2, 1, 0, 3]}))
    # Squeeze / Unsqueeze.
    y = rand(3, (1, 3, 1, 4))
    out += [
        single("squeeze_opset11_attr", "Squeeze", {"x": y}, {"axes": [0, -2]}, opset=11),
        single("squeeze_opset11_all", "Squeeze", {"x": y}, opset=11),
        single("squeeze_opset13_input", "Squeeze", {"x": y}, consts={"a": i64(-2)}, opset=13),
        single("squeeze_opset13_all", "Squeeze", {"x": y}, opset=13),
        single("unsqueeze_opset11_attr", "Unsqueeze", {"x": y}, {"axes": [0, -1]}, opset=11),
        single("unsqueeze_opset13_input", "Unsqueeze", {"x": y}, consts={"a": i64(4, 1)}, opset=13),
        single("unsqueeze_scalar", "Unsqueeze", {"x": np.array(2.5, np.float32)},
               consts={"a": i64(0)}, opset=13),
        single("unsqueeze_negative_unsorted", "Unsqueeze", {"x": y}, consts={"a": i64(-1, 0, -3)},
               opset=13),
    ]
    # Split.
    s = rand(4, (2, 6, 5))
    out += [
        single("split_equal_opset11", "Split", {"x": s}, {"axis": 1}, outputs=3, opset=11),
        single("split_attr_opset11", "Split", {"x": s}, {"axis": 1, "split": [1, 2, 3]},
               outputs=3, opset=11),
        single("split_input_opset13", "Split", {"x": s}, {"axis": -1},
               consts={"sp": i64(2, 3)}, outputs=2, opset=13),
        single("split_equal_opset13", "Split", {"x": s}, {"axis": 1}, outputs=2, opset=13),
        single("split_num_outputs_opset18", "Split", {"x": s}, {"axis": 2, "num_outputs": 2},
               outputs=2, opset=18),
        single("split_num_outputs_uneven", "Split", {"x": s}, {"axis": 1, "num_outputs": 4},
               outputs=4, opset=18),
        single("split_default_axis0", "Split", {"x": s}, outputs=2, opset=13),
    ]
    # Concat.
    out += [
        single("concat_axis1", "Concat", {"a": rand(5, (2, 2, 3)), "b": rand(6, (2, 4, 3))},
               {"axis": 1}),
        single("concat_negative_axis", "Concat",
               {"a": rand(5, (2, 2, 3)), "b": rand(6, (2, 2, 1)), "c": rand(7, (2, 2, 2))},
               {"axis": -1}),
        single("concat_with_const", "Concat", {"a": rand(5, (2, 2, 3))}, {"axis": 0},
               consts={"b": rand(8, (1, 2, 3))}),
        single("concat_int64", "Concat", {"a": ints(9, (3,), -5, 5)}, {"axis": 0},
               consts={"b": i64(7, 8)}),
        single("concat_one_input", "Concat", {"a": rand(5, (2, 2, 3))}, {"axis": 2}),
        single("concat_empty_part", "Concat", {"a": rand(5, (2, 2, 3))}, {"axis": 1},
               consts={"b": np.zeros((2, 0, 3), np.float32)}),
        single("input_with_zero_dim", "Relu", {"x": np.zeros((2, 0, 3), np.float32)},
               error="dimension 1"),
    ]
    # Slice.
    def sl(name, starts, ends, axes=None, steps=None, data=x, **kw):
        consts = {"s": i64(*starts), "e": i64(*ends)}
        order = ["x", "s", "e"]
        if axes is not None:
            consts["a"] = i64(*axes)
            order.append("a")
        if steps is not None:
            if axes is None:
                order.append(None)
            consts["st"] = i64(*steps)
            order.append("st")
        return single(name, "Slice", {"x": data}, consts=consts, order=order, **kw)

    out += [
        sl("slice_basic", [0, 1], [2, 3], [1, 2]),
        sl("slice_axes_omitted", [1, 0, 1], [2, 2, 3]),
        sl("slice_negative_starts_ends", [-3, -4], [-1, -1], [2, 3]),
        sl("slice_int64_max_end", [1], [MAX], [3]),
        sl("slice_int64_min_start_big_end", [MIN], [100], [1]),
        sl("slice_negative_step", [-1], [MIN], [3], [-1]),
        sl("slice_negative_step_2", [4, 3], [0, -100], [3, 2], [-2, -1]),
        sl("slice_step_2", [0, 1], [MAX, MAX], [2, 3], [2, 3]),
        sl("slice_negative_axes", [1], [3], [-1], [1]),
        sl("slice_steps_axes_omitted", [0, 2], [2, 0], None, [1, -1]),
        sl("slice_empty", [3], [1], [2]),
        sl("slice_start_past_end", [10], [20], [3]),
        sl("slice_negative_step_start_past_end", [10], [0], [3], [-2]),
        single("slice_opset1_attrs", "Slice", {"x": x},
               {"starts": [1, -2], "ends": [MAX, -1], "axes": [1, 3]}, opset=9,
               error="opset 9"),
    ]
    # Gather.
    out += [
        single("gather_axis0", "Gather", {"x": x}, {"axis": 0}, consts={"i": i64(1, 0, 1)}),
        single("gather_scalar_index", "Gather", {"x": x}, {"axis": 2},
               consts={"i": np.array(-1, I64)}),
        single("gather_scalar_index_axis0", "Gather", {"x": x}, consts={"i": np.array(1, I64)}),
        single("gather_negative_axis", "Gather", {"x": x}, {"axis": -1},
               consts={"i": i64(-5, 4, 0, -1)}),
        single("gather_2d_indices", "Gather", {"x": x}, {"axis": 3},
               consts={"i": np.array([[0, -1, 2], [4, 4, -3]], I64)}),
        single("gather_int32_indices", "Gather", {"x": x}, {"axis": 1},
               consts={"i": np.array([2, -3], np.int32)}),
        single("gather_runtime_indices", "Gather", {"x": rand(10, (10, 4)),
                                                     "i": np.array([[3, -1], [0, 9]], I64)}),
        single("gather_int64_data", "Gather", {"x": ints(11, (5, 3), -9, 9)}, {"axis": 1},
               consts={"i": i64(2, 0)}),
        single("gather_shape_element", "Gather", {}, consts={"x": i64(1, 3, 224, 224),
                                                             "i": np.array(2, I64)}),
    ]
    # Expand.
    out += [
        single("expand_rank_up", "Expand", {"x": rand(12, (3, 1))}, consts={"s": i64(2, 3, 4)}),
        single("expand_ones_keep_dims", "Expand", {"x": rand(12, (3, 1))}, consts={"s": i64(1, 1)}),
        single("expand_shape_shorter", "Expand", {"x": rand(13, (2, 1, 4))}, consts={"s": i64(3, 1)}),
        single("expand_scalar", "Expand", {"x": np.array(1.5, np.float32)}, consts={"s": i64(2, 3)}),
        single("expand_int64", "Expand", {"x": i64(1, 2, 3)}, consts={"s": i64(2, 1)}),
        single("expand_bool", "Expand", {"x": np.array([True, False])}, consts={"s": i64(3, 2)}),
    ]
    # Pad.
    p = rand(14, (1, 2, 4, 5))

    def pad(name, pads, mode=None, value=None, axes=None, opset=18, data=p, **kw):
        consts = {"p": i64(*pads)}
        order = ["x", "p"]
        if value is not None:
            consts["v"] = np.array(value, data.dtype)
            order.append("v")
        if axes is not None:
            if value is None:
                order.append(None)
            consts["a"] = i64(*axes)
            order.append("a")
        attrs = {} if mode is None else {"mode": mode}
        return single(name, "Pad", {"x": data}, attrs, consts=consts, order=order, opset=opset, **kw)

    for mode in ["constant", "reflect", "edge"]:
        out += [
            pad(f"pad_{mode}", [0, 0, 1, 2, 0, 0, 2, 1], mode),
            pad(f"pad_{mode}_negative", [0, 0, -1, 2, 0, 0, 1, -2], mode),
            pad(f"pad_{mode}_axes", [1, 3, 2, 1], mode, axes=[2, -1]),
            pad(f"pad_{mode}_opset11", [0, 0, 2, 1, 0, 0, 1, 3], mode, opset=11),
        ]
    out += [
        pad("pad_constant_value", [0, 1, 1, 0, 0, 1, 1, 0], "constant", value=-2.5),
        pad("pad_default_mode", [0, 0, 1, 1, 0, 0, 1, 1]),
        pad("pad_int64", [1, 2], "constant", value=7, data=i64(1, 2, 3), opset=13),
        pad("pad_reflect_1d_wide", [3, 3], "reflect", data=rand(15, (5,)), opset=13),
        pad("pad_edge_batch_axis", [1, 0, 0, 0, 0, 0, 0, 1], "edge"),
        pad("pad_all_negative", [0, 0, -1, -1, 0, 0, -1, -2], "constant"),
        pad("pad_crop_to_empty", [0, -2, 0, 0, 0, 0, 0, 1], "constant"),
        pad("pad_wrap", [0, 0, 1, 1, 0, 0, 1, 1], "wrap", opset=19, error="wrap"),
        single("pad_opset2_attr", "Pad", {"x": p}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1]}, opset=2,
               error="opset 2"),
    ]
    # Ops resolved to constants: their outputs feed an op on the data.
    f = rand(16, (2, 3, 4))
    cst = lambda n, v: helper.make_node("Constant", [], [n], value=numpy_helper.from_array(v))
    out += [
        Case("shape_reshape", [helper.make_node("Shape", ["x"], ["s"]),
                               helper.make_node("Reshape", ["x", "s"], ["y"])],
             {"x": f}, ["y", "s"]),
        Case("shape_start_end", [helper.make_node("Shape", ["x"], ["y"], start=1, end=-1)],
             {"x": f}, ["y"], opset=15),
        Case("shape_negative_start", [helper.make_node("Shape", ["x"], ["y"], start=-2)],
             {"x": f}, ["y"], opset=15),
        Case("size", [helper.make_node("Size", ["x"], ["y"])], {"x": f}, ["y"]),
        # (2.2 - 1) / 0.2 is 6 in f32 arithmetic, 7 in f64 (onnxruntime: 7).
        Case("range_float", [cst("a", np.array(1.0, np.float32)), cst("b", np.array(2.2, np.float32)),
                             cst("d", np.array(0.2, np.float32)),
                             helper.make_node("Range", ["a", "b", "d"], ["r"]),
                             helper.make_node("Identity", ["x"], ["y"])],
             {"x": rand(17, (7,))}, ["y", "r"]),
        Case("range_int64_negative_delta",
             [cst("a", np.array(10, I64)), cst("b", np.array(-3, I64)), cst("d", np.array(-3, I64)),
              helper.make_node("Range", ["a", "b", "d"], ["r"]),
              helper.make_node("Mul", ["x", "r"], ["y"])],
             {"x": ints(18, (5,), -4, 4)}, ["y"]),
        Case("range_empty", [cst("a", np.array(5, I64)), cst("b", np.array(1, I64)),
                             cst("d", np.array(1, I64)),
                             helper.make_node("Range", ["a", "b", "d"], ["r"]),
                             helper.make_node("Concat", ["x", "r"], ["y"], axis=0)],
             {"x": ints(18, (3,), -4, 4)}, ["y"]),
        Case("constant_of_shape_default",
             [cst("s", i64(2, 3)), helper.make_node("ConstantOfShape", ["s"], ["c"]),
              helper.make_node("Add", ["x", "c"], ["y"])], {"x": rand(19, (2, 3))}, ["y"]),
        Case("constant_of_shape_int64",
             [helper.make_node("Shape", ["x"], ["s"]),
              helper.make_node("ConstantOfShape", ["s"], ["c"],
                               value=numpy_helper.from_array(i64(7))),
              helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
              helper.make_node("Add", ["xi", "c"], ["y"])], {"x": rand(19, (2, 3), -5, 5)}, ["y"]),
        Case("constant_of_shape_from_shape_of_input",
             [helper.make_node("Shape", ["x"], ["s"]),
              helper.make_node("ConstantOfShape", ["s"], ["c"],
                               value=numpy_helper.from_array(np.array([1.5], np.float32))),
              helper.make_node("Mul", ["x", "c"], ["y"])], {"x": rand(20, (3, 2))}, ["y"]),
        Case("constant_value_float", [helper.make_node("Constant", [], ["c"], value_float=2.5),
                                      helper.make_node("Mul", ["x", "c"], ["y"])],
             {"x": rand(21, (2, 3))}, ["y"]),
        Case("constant_value_ints", [helper.make_node("Constant", [], ["c"], value_ints=[2, -1]),
                                     helper.make_node("Reshape", ["x", "c"], ["y"])],
             {"x": rand(21, (2, 3))}, ["y"]),
        Case("constant_tensor", [cst("c", rand(22, (2, 3))),
                                 helper.make_node("Sub", ["x", "c"], ["y"])],
             {"x": rand(21, (2, 3))}, ["y"]),
        Case("expand_from_shape", [helper.make_node("Shape", ["z"], ["s"]),
                                   helper.make_node("Expand", ["x", "s"], ["y"])],
             {"x": rand(23, (3, 1)), "z": rand(24, (2, 3, 4))}, ["y"]),
        Case("reshape_from_computed_shape",
             [helper.make_node("Shape", ["x"], ["s"]),
              cst("i", i64(0)), helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
              cst("m", i64(-1)), helper.make_node("Concat", ["n", "m"], ["t"], axis=0),
              helper.make_node("Reshape", ["x", "t"], ["y"])],
             {"x": f}, ["y"]),
        # Other element types through the movement ops.
        single("transpose_int64", "Transpose", {"x": ints(30, (2, 3, 4), -99, 99)}, {"perm": [2, 0, 1]}),
        single("transpose_bool", "Transpose", {"x": ints(31, (2, 3, 4), 0, 2).astype(bool)},
               {"perm": [1, 2, 0]}),
        single("transpose_u8", "Transpose", {"x": ints(32, (2, 3, 5), 0, 256, np.uint8)},
               {"perm": [0, 2, 1]}),
        sl("slice_int32", [1, -1], [MAX, 0], [0, 1], [1, -2],
           data=ints(33, (3, 5), -99, 99, np.int32)),
        single("concat_bool", "Concat", {"a": ints(34, (2, 3), 0, 2).astype(bool),
                                         "b": ints(35, (2, 1), 0, 2).astype(bool)}, {"axis": 1}),
        single("where_u8", "Where", {"c": ints(36, (2, 3), 0, 2).astype(bool),
                                     "a": ints(37, (2, 3), 0, 256, np.uint8),
                                     "b": ints(38, (3,), 0, 256, np.uint8)}),
        single("split_int64", "Split", {"x": ints(39, (4, 6), -9, 9)}, {"axis": 1},
               consts={"sp": i64(1, 5)}, outputs=2, opset=13),
        single("gather_i8", "Gather", {"x": ints(40, (4, 3), -128, 128, np.int8)},
               consts={"i": i64(3, -4)}),
        single("expand_u8", "Expand", {"x": ints(41, (1, 3), 0, 256, np.uint8)},
               consts={"s": i64(2, 1, 3)}),
        pad("pad_bool_edge", [1, 1], "edge", data=np.array([True, False, True]), opset=13),
        single("reshape_runtime_shape", "Reshape", {"x": f, "s": i64(4, 6)},
               error="must be a constant"),
        single("expand_runtime_shape", "Expand", {"x": rand(23, (3, 1)), "s": i64(2, 3, 4)},
               error="must be a constant"),
    ]
    return out

"""Small graphs that the rewrite rules change (folds and fusions), and near misses they must
leave alone; compiled fused and unfused, both must match onnxruntime."""

import numpy as np
from onnx import helper

from gen import Case, rand

N = helper.make_node
F32 = np.float32


def i64(*v):
    return np.array(v, np.int64)


def conv_then(name, tail, extra_consts=None, x=None, w=None, inputs=None, opset=17, **conv_attrs):
    """Conv(x, w, b) -> c, then `tail` nodes reading c and writing y."""
    x = rand(1, (1, 4, 6, 6)) if x is None else x
    w = rand(2, (4, x.shape[1] // conv_attrs.get("group", 1), 3, 3)) if w is None else w
    consts = {"w": w, "b": rand(3, (w.shape[0],))}
    consts.update(extra_consts or {})
    nodes = [N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], **conv_attrs)] + tail
    ins = {"x": x}
    ins.update(inputs or {})
    return Case(name, nodes, ins, ["y"], consts=consts, opset=opset)


def cases():
    c = [
        conv_then("conv_relu", [N("Relu", ["c"], ["y"])]),
        conv_then("conv_clip6", [N("Clip", ["c", "lo", "hi"], ["y"])],
                  {"lo": np.array(0, F32), "hi": np.array(0.3, F32)}),
        conv_then("conv_clip_min_only", [N("Clip", ["c", "lo"], ["y"])], {"lo": np.array(-0.2, F32)}),
        conv_then("conv_leaky_relu", [N("LeakyRelu", ["c"], ["y"], alpha=0.3)]),
        conv_then("conv_sigmoid", [N("Sigmoid", ["c"], ["y"])]),
        conv_then("conv_tanh", [N("Tanh", ["c"], ["y"])]),
        conv_then("conv_hardswish", [N("HardSwish", ["c"], ["y"])]),
        conv_then("conv_hardsigmoid", [N("HardSigmoid", ["c"], ["y"], alpha=0.3, beta=0.4)]),
        conv_then("conv_elu", [N("Elu", ["c"], ["y"], alpha=0.7)]),
        conv_then("conv_mish", [N("Mish", ["c"], ["y"])], opset=18),
        conv_then("conv_gelu", [N("Gelu", ["c"], ["y"])], opset=20),
        conv_then("conv_swish", [N("Sigmoid", ["c"], ["s"]), N("Mul", ["s", "c"], ["y"])]),
        conv_then("conv_swish_other_order", [N("Sigmoid", ["c"], ["s"]), N("Mul", ["c", "s"], ["y"])]),
        conv_then("conv_sigmoid_times_other", [N("Sigmoid", ["c"], ["s"]), N("Mul", ["s", "z"], ["y"])],
                  inputs={"z": rand(4, (1, 4, 6, 6))}),
        conv_then("conv_sigmoid_used_twice",
                  [N("Sigmoid", ["c"], ["s"]), N("Mul", ["s", "c"], ["m"]), N("Add", ["m", "s"], ["y"])]),
        conv_then("conv_relu_used_twice", [N("Relu", ["c"], ["r"]), N("Add", ["r", "c"], ["y"])]),
        conv_then("conv_depthwise_relu6", [N("Clip", ["c", "lo", "hi"], ["y"])],
                  {"lo": np.array(0, F32), "hi": np.array(6, F32)}, group=4),
        # Residual adds.
        conv_then("conv_residual", [N("Add", ["c", "r"], ["y"])], inputs={"r": rand(5, (1, 4, 6, 6))}),
        conv_then("conv_residual_swapped_relu", [N("Add", ["r", "c"], ["a"]), N("Relu", ["a"], ["y"])],
                  inputs={"r": rand(5, (1, 4, 6, 6))}),
        conv_then("conv_residual_broadcast", [N("Add", ["c", "r"], ["y"])],
                  inputs={"r": rand(6, (1, 4, 1, 1))}),
        conv_then("conv_residual_broadcast_up", [N("Add", ["c", "r"], ["y"])],
                  inputs={"r": rand(7, (2, 4, 6, 6))}),
        conv_then("conv_residual_self", [N("Add", ["c", "c"], ["y"])]),
        conv_then("conv_relu_residual", [N("Relu", ["c"], ["a"]), N("Add", ["a", "x"], ["y"])]),
        conv_then("conv_residual_const", [N("Add", ["c", "k"], ["y"])], {"k": rand(8, (1, 4, 6, 6))}),
        conv_then("conv_sub_residual", [N("Sub", ["r", "c"], ["y"])], inputs={"r": rand(5, (1, 4, 6, 6))}),
        # BatchNormalization after Conv.
        conv_then("conv_bn", [N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"], epsilon=1e-3)],
                  {"s": rand(9, (4,)), "bb": rand(10, (4,)), "m": rand(11, (4,)), "v": rand(12, (4,), 0.1, 2)}),
        conv_then("conv_bn_relu", [N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"]),
                                   N("Relu", ["n"], ["y"])],
                  {"s": rand(9, (4,), -1, 1), "bb": rand(10, (4,)), "m": rand(11, (4,)),
                   "v": rand(12, (4,), 0.1, 2)}),
        conv_then("conv_bn_depthwise", [N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"])],
                  {"s": rand(9, (4,)), "bb": rand(10, (4,)), "m": rand(11, (4,)), "v": rand(12, (4,), 0.1, 2)},
                  group=4),
        Case("conv_no_bias_bn", [N("Conv", ["x", "w"], ["c"]),
                                 N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y"],
             consts={"w": rand(2, (4, 3, 3, 3)), "s": rand(9, (4,)), "bb": rand(10, (4,)),
                     "m": rand(11, (4,)), "v": rand(12, (4,), 0.1, 2)}),
        Case("conv_bn_conv_output_kept", [N("Conv", ["x", "w"], ["c"]),
                                          N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y", "c"],
             consts={"w": rand(2, (4, 3, 3, 3)), "s": rand(9, (4,)), "bb": rand(10, (4,)),
                     "m": rand(11, (4,)), "v": rand(12, (4,), 0.1, 2)}),
        Case("conv_weights_shared_bn", [N("Conv", ["x", "w"], ["c"]), N("Conv", ["x", "w"], ["d"]),
                                        N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["e"]),
                                        N("Add", ["e", "d"], ["y"])],
             {"x": rand(1, (1, 4, 5, 5))}, ["y"],
             consts={"w": rand(2, (4, 4, 3, 3)), "s": rand(9, (4,)), "bb": rand(10, (4,)),
                     "m": rand(11, (4,)), "v": rand(12, (4,), 0.1, 2)}),
        # Pad before Conv.
        Case("pad_zero_conv", [N("Pad", ["x", "p"], ["q"]), N("Conv", ["q", "w"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y"],
             consts={"p": i64(0, 0, 1, 2, 0, 0, 2, 0), "w": rand(2, (4, 3, 3, 3))}),
        Case("pad_value_conv", [N("Pad", ["x", "p", "v"], ["q"]), N("Conv", ["q", "w"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y"],
             consts={"p": i64(0, 0, 1, 1, 0, 0, 1, 1), "v": np.array(1.5, F32),
                     "w": rand(2, (4, 3, 3, 3))}),
        Case("pad_reflect_conv", [N("Pad", ["x", "p"], ["q"], mode="reflect"), N("Conv", ["q", "w"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y"],
             consts={"p": i64(0, 0, 1, 1, 0, 0, 1, 1), "w": rand(2, (4, 3, 3, 3))}),
        Case("pad_channels_conv", [N("Pad", ["x", "p"], ["q"]), N("Conv", ["q", "w"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y"],
             consts={"p": i64(0, 1, 0, 0, 0, 0, 0, 0), "w": rand(2, (4, 4, 3, 3))}),
        Case("pad_zero_conv_pad_used_twice", [N("Pad", ["x", "p"], ["q"]), N("Conv", ["q", "w"], ["c"]),
                                              N("ReduceMean", ["q"], ["m"], keepdims=1),
                                              N("Add", ["c", "m"], ["y"])],
             {"x": rand(1, (1, 3, 5, 5))}, ["y"],
             consts={"p": i64(0, 0, 1, 1, 0, 0, 1, 1), "w": rand(2, (4, 3, 3, 3))}),
        Case("pad_zero_conv_1d", [N("Pad", ["x", "p"], ["q"]), N("Conv", ["q", "w"], ["y"], strides=[2])],
             {"x": rand(1, (1, 3, 9))}, ["y"],
             consts={"p": i64(0, 0, 2, 0, 0, 1), "w": rand(2, (4, 3, 3))}),
        # MatMul + Add -> Gemm, Gemm + activation.
        Case("matmul_add_bias", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (4, 5)), "b": rand(3, (5,))}),
        Case("matmul_add_bias_first", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["b", "m"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (4, 5)), "b": rand(3, (5,))}),
        Case("matmul_add_column", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (4, 5)), "b": rand(3, (3, 1))}),
        Case("matmul_add_full", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["y"])],
             {"a": rand(1, (3, 4)), "b": rand(3, (3, 5))}, ["y"], consts={"w": rand(2, (4, 5))}),
        Case("matmul_add_broadcast_up", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (4, 5)), "b": rand(3, (2, 3, 5))}),
        Case("matmul_3d_add", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["y"])],
             {"a": rand(1, (2, 3, 4))}, ["y"], consts={"w": rand(2, (4, 5)), "b": rand(3, (5,))}),
        Case("matmul_add_relu", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["n"]),
                                 N("Relu", ["n"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (4, 5)), "b": rand(3, (5,))}),
        Case("matmul_out_kept_add", [N("MatMul", ["a", "w"], ["m"]), N("Add", ["m", "b"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y", "m"], consts={"w": rand(2, (4, 5)), "b": rand(3, (5,))}),
        Case("gemm_sigmoid", [N("Gemm", ["a", "w", "b"], ["m"], transB=1), N("Sigmoid", ["m"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (5, 4)), "b": rand(3, (5,))}),
        Case("gemm_clip", [N("Gemm", ["a", "w"], ["m"], alpha=2.0), N("Clip", ["m", "lo", "hi"], ["y"])],
             {"a": rand(1, (3, 4))}, ["y"],
             consts={"w": rand(2, (4, 5)), "lo": np.array(-0.5, F32), "hi": np.array(0.5, F32)}),
        # Movement rules.
        Case("transpose_pair_cancels", [N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
                                        N("Transpose", ["t"], ["y"], perm=[0, 3, 1, 2])],
             {"x": rand(1, (1, 2, 3, 4))}, ["y"]),
        Case("transpose_pair_composes", [N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
                                         N("Transpose", ["t"], ["y"], perm=[0, 2, 3, 1])],
             {"x": rand(1, (1, 2, 3, 4))}, ["y"]),
        Case("transpose_pair_middle_kept", [N("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                                            N("Transpose", ["t"], ["y"], perm=[1, 0, 2])],
             {"x": rand(1, (2, 3, 4))}, ["y", "t"]),
        Case("reshape_chain", [N("Reshape", ["x", "s1"], ["t"]), N("Reshape", ["t", "s2"], ["y"])],
             {"x": rand(1, (2, 3, 4))}, ["y"], consts={"s1": i64(6, 4), "s2": i64(4, -1)}),
        Case("reshape_chain_middle_kept", [N("Reshape", ["x", "s1"], ["t"]), N("Reshape", ["t", "s2"], ["y"]),
                                           N("Neg", ["t"], ["z"])],
             {"x": rand(1, (2, 3, 4))}, ["y", "z"], consts={"s1": i64(6, 4), "s2": i64(4, -1)}),
        Case("identity_chain_output", [N("Identity", ["x"], ["a"]), N("Relu", ["a"], ["b"]),
                                       N("Identity", ["b"], ["y"])],
             {"x": rand(1, (2, 3))}, ["y", "a"]),
        Case("reshape_of_input_is_output", [N("Reshape", ["x", "s"], ["y"]), N("Neg", ["x"], ["z"])],
             {"x": rand(1, (2, 3))}, ["y", "z"], consts={"s": i64(3, 2)}),
        Case("output_twice", [N("Relu", ["x"], ["y"])], {"x": rand(1, (2, 3))}, ["y", "y"]),
        Case("flatten_gemm", [N("Flatten", ["x"], ["f"]), N("Gemm", ["f", "w", "b"], ["y"], transB=1)],
             {"x": rand(1, (2, 3, 2, 2))}, ["y"], consts={"w": rand(2, (5, 12)), "b": rand(3, (5,))}),
        Case("global_pool_flatten_gemm", [N("GlobalAveragePool", ["x"], ["p"]), N("Flatten", ["p"], ["f"]),
                                          N("Gemm", ["f", "w", "b"], ["y"], transB=1)],
             {"x": rand(1, (2, 3, 4, 4))}, ["y"], consts={"w": rand(2, (5, 3)), "b": rand(3, (5,))}),
        Case("softmax_after_gemm", [N("Gemm", ["a", "w"], ["m"]), N("Softmax", ["m"], ["y"], axis=-1)],
             {"a": rand(1, (3, 4))}, ["y"], consts={"w": rand(2, (4, 5))}, opset=13),
    ]
    return c

"""Quantized (QDQ) graphs as exporters write them: the int8 rewrite rules turn them into QConv,
QGemm, QAdd and QPool, fold Clip/Relu into the output's quantization and push DequantizeLinear
through movement ops. onnxruntime runs the same graph in float between Q and DQ; the final
output is a multiple of its scale, so one step of it is allowed (a tie rounded the other way)."""

import numpy as np
from onnx import helper

from gen import Case, rand

N = helper.make_node
F32, U8, I8 = np.float32, np.uint8, np.int8

XS, XZ = 0.02, 128      # activations: u8, [-2.56, 2.54]
YS, YZ = 0.05, 100      # outputs


def q_in(name="x"):
    """x -> Q -> DQ -> xd."""
    return [N("QuantizeLinear", [name, "xs", "xz"], [name + "q"]),
            N("DequantizeLinear", [name + "q", "xs", "xz"], [name + "d"])]


def q_out(t, y="y"):
    return [N("QuantizeLinear", [t, "ys", "yz"], ["yq"]),
            N("DequantizeLinear", ["yq", "ys", "yz"], [y])]


def scales():
    return {"xs": np.array(XS, F32), "xz": np.array(XZ, U8), "ys": np.array(YS, F32),
            "yz": np.array(YZ, U8)}


def weights(seed, shape, axis=0):
    """i8 symmetric per-channel weights and their DequantizeLinear."""
    w = rand(seed, shape)
    s = (np.abs(w).reshape(shape[0], -1).max(1) / 127).astype(F32) if axis == 0 else \
        (np.abs(w).max(0) / 127).astype(F32)
    shp = [-1] + [1] * (len(shape) - 1) if axis == 0 else [1, -1]
    q = np.clip(np.round(w / s.reshape(shp)), -127, 127).astype(I8)
    return q, s


def case(name, nodes, inputs, consts, outputs=("y",), opset=13):
    c = scales()
    c.update(consts)
    return Case(name, nodes, inputs, list(outputs), consts=c, opset=opset, atol=YS * 1.001, rtol=0)


def conv_case(name, tail, act_out="c", group=1, cin=4, cout=6, k=3, bias=True, **attrs):
    wq, ws = weights(2, (cout, cin // group, k, k))
    consts = {"wq": wq, "ws": ws, "wz": np.zeros(cout, I8)}
    ins = ["xd", "wd"]
    if bias:
        consts["b"] = rand(3, (cout,), -0.5, 0.5)
        ins.append("b")
    nodes = q_in() + [N("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
                      N("Conv", ins, ["c"], group=group, **attrs)] + tail + q_out(act_out)
    return case(name, nodes, {"x": rand(1, (1, cin, 7, 7), -2.5, 2.5)}, consts)


def cases():
    out = [
        conv_case("qconv", [], pads=[1, 1, 1, 1]),
        conv_case("qconv_no_bias", [], bias=False, strides=[2, 2]),
        conv_case("qconv_relu", [N("Relu", ["c"], ["r"])], "r", pads=[1, 1, 1, 1]),
        conv_case("qconv_clip", [N("Clip", ["c", "lo", "hi"], ["r"])], "r", pads=[1, 1, 1, 1]),
        conv_case("qconv_depthwise", [], group=4, cout=4, pads=[1, 1, 1, 1]),
        conv_case("qconv_1x1", [], k=1),
        conv_case("qconv_sigmoid_not_fused", [N("Sigmoid", ["c"], ["r"])], "r"),
    ]
    out[3].consts.update({"lo": np.array(0, F32), "hi": np.array(1.5, F32)})
    # Gemm / MatMul.
    wq, ws = weights(4, (5, 8))  # Gemm transB: [N, K], per output row
    out += [
        case("qgemm_transb", q_in() + [N("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
                                      N("Gemm", ["xd", "wd", "b"], ["g"], transB=1)] + q_out("g"),
             {"x": rand(5, (3, 8), -2.5, 2.5)},
             {"wq": wq, "ws": ws, "wz": np.zeros(5, I8), "b": rand(6, (5,))}),
    ]
    wq2, ws2 = weights(7, (8, 5), axis=1)  # MatMul: [K, N], per column
    out += [
        case("qmatmul", q_in() + [N("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=1),
                                 N("MatMul", ["xd", "wd"], ["g"])] + q_out("g"),
             {"x": rand(8, (3, 8), -2.5, 2.5)},
             {"wq": wq2, "ws": ws2, "wz": np.zeros(5, I8)}),
        case("qmatmul_add_relu", q_in() + [N("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=1),
                                          N("MatMul", ["xd", "wd"], ["g"]), N("Add", ["g", "b"], ["h"]),
                                          N("Relu", ["h"], ["r"])] + q_out("r"),
             {"x": rand(8, (3, 8), -2.5, 2.5)},
             {"wq": wq2, "ws": ws2, "wz": np.zeros(5, I8), "b": rand(9, (5,))}),
    ]
    # Add of two quantized tensors; pooling; movement.
    out += [
        case("qadd", q_in("x") + q_in("z") + [N("Add", ["xd", "zd"], ["a"])] + q_out("a"),
             {"x": rand(10, (1, 3, 4, 4), -2.5, 2.5), "z": rand(11, (1, 3, 4, 4), -2.5, 2.5)}, {}),
        case("qadd_relu", q_in("x") + q_in("z") + [N("Add", ["xd", "zd"], ["a"]), N("Relu", ["a"], ["r"])]
             + q_out("r"),
             {"x": rand(10, (1, 3, 4, 4), -2.5, 2.5), "z": rand(11, (1, 3, 4, 4), -2.5, 2.5)}, {}),
        case("qadd_broadcast", q_in("x") + q_in("z") + [N("Add", ["xd", "zd"], ["a"])] + q_out("a"),
             {"x": rand(10, (1, 3, 4, 4), -2.5, 2.5), "z": rand(11, (1, 3, 1, 1), -2.5, 2.5)}, {}),
        case("qmaxpool", q_in() + [N("MaxPool", ["xd"], ["p"], kernel_shape=[2, 2], strides=[2, 2])]
             + q_out("p"), {"x": rand(12, (1, 3, 6, 6), -2.5, 2.5)}, {}),
        case("qmaxpool_same_scale", q_in() + [N("MaxPool", ["xd"], ["p"], kernel_shape=[3, 3],
                                                pads=[1, 1, 1, 1], strides=[2, 2]),
                                              N("QuantizeLinear", ["p", "xs", "xz"], ["yq"]),
                                              N("DequantizeLinear", ["yq", "xs", "xz"], ["y"])],
             {"x": rand(12, (1, 3, 6, 6), -2.5, 2.5)}, {}),
        case("qavgpool", q_in() + [N("AveragePool", ["xd"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                     strides=[2, 2])] + q_out("p"),
             {"x": rand(13, (1, 3, 6, 6), -2.5, 2.5)}, {}),
        case("qglobal_avgpool", q_in() + [N("GlobalAveragePool", ["xd"], ["p"])] + q_out("p"),
             {"x": rand(14, (1, 3, 6, 6), -2.5, 2.5)}, {}),
        case("qreshape_transpose", q_in() + [N("Reshape", ["xd", "s"], ["r"]),
                                             N("Transpose", ["r"], ["t"], perm=[1, 0])] + q_out("t"),
             {"x": rand(15, (2, 3, 4), -2.5, 2.5)}, {"s": np.array([6, 4], np.int64)}),
        case("qdq_dq_weights_only", [N("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
                                     N("Conv", ["x", "wd"], ["y"])],
             {"x": rand(16, (1, 6, 5, 5))},
             {"wq": weights(17, (4, 6, 3, 3))[0], "ws": weights(17, (4, 6, 3, 3))[1],
              "wz": np.zeros(4, I8)}),
        case("qconv_chain", q_in() + [
            N("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
            N("Conv", ["xd", "wd", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["r"]),
            N("QuantizeLinear", ["r", "ms", "mz"], ["mq"]), N("DequantizeLinear", ["mq", "ms", "mz"], ["md"]),
            N("DequantizeLinear", ["vq", "vs", "vz"], ["vd"], axis=0),
            N("Conv", ["md", "vd"], ["c2"]), N("Add", ["c2", "bb"], ["a"])] + q_out("a"),
             {"x": rand(18, (1, 4, 6, 6), -2.5, 2.5)},
             {"wq": weights(19, (4, 4, 3, 3))[0], "ws": weights(19, (4, 4, 3, 3))[1],
              "wz": np.zeros(4, I8), "b": rand(20, (4,)), "ms": np.array(0.03, F32),
              "mz": np.array(0, U8), "vq": weights(21, (3, 4, 1, 1))[0],
              "vs": weights(21, (3, 4, 1, 1))[1], "vz": np.zeros(3, I8),
              "bb": rand(22, (1, 3, 1, 1))}),
    ]
    return out

"""onnxruntime's QOperator format: QLinearConv, QLinearMatMul (default domain), QGemm,
QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearAveragePool, QLinearSigmoid,
QLinearLeakyRelu, QLinearConcat (com.microsoft), MaxPool over u8, and a small CNN quantized by
onnxruntime's own `quantize_static` in QOperator format. Each case quantizes a float input,
runs the quantized op and dequantizes its output, so it compares floats: edgefuse's int8
kernels may round a value to the neighbouring step, so the tolerance is one output step (the
whole CNN: two of the logits' steps)."""

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gen import Case, rand

MS = [("com.microsoft", 1)]


def f(v):
    return np.array(v, dtype=np.float32)


def u8(v):
    return np.array(v, dtype=np.uint8)


def i8(v):
    return np.array(v, dtype=np.int8)


def quantized(seed, shape, scale, zp, dtype=np.uint8):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, size=shape).astype(dtype)


def wrap(name, op, x, x_scale, x_zp, y_scale, y_zp, middle, consts, domain=None, attrs=None,
         extra_inputs=None, steps=1.01):
    """x (float, fed) → QuantizeLinear(x_scale, x_zp) → `op`(`middle` inputs) →
    DequantizeLinear(y_scale, y_zp) → y."""
    consts = dict(consts)
    consts.update({"xs": f(x_scale), "xz": x_zp, "ys": f(y_scale), "yz": y_zp})
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quantize"),
        helper.make_node(op, middle, ["yq"], name=name, domain=domain, **(attrs or {})),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dequantize"),
    ]
    inputs = {"x": x}
    inputs.update(extra_inputs or {})
    return Case(name, nodes, inputs, ["y"], consts=consts, atol=steps * y_scale, rtol=0,
                domains=MS if domain else ())


def cnn_quantized_by_onnxruntime():
    """Conv+Relu → MaxPool → Conv + residual → GlobalAveragePool → Flatten → Gemm, quantized
    by onnxruntime.quantization.quantize_static (QOperator, u8 activations, i8 per-channel
    weights), calibrated on 16 random inputs."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    rng = np.random.default_rng(7)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((8, 8, 3, 3)) * 0.15).astype(np.float32)
    b2 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    wf = (rng.standard_normal((10, 8)) * 0.5).astype(np.float32)
    bf = (rng.standard_normal(10) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["a2"]),
        helper.make_node("GlobalAveragePool", ["a2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["fl"]),
        helper.make_node("Gemm", ["fl", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in
             [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("wf", wf), ("bf", bf)]]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"x": rand(100 + i, (1, 3, 16, 16))} for i in range(16)])

        def get_next(self):
            return next(self.data, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "f.onnx"), os.path.join(d, "q.onnx")
        onnx.save(model, src)
        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
        q = onnx.load(dst)
    ops = sorted({n.op_type for n in q.graph.node})
    for want in ("QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool"):
        assert want in ops, f"onnxruntime's quantizer gave {ops}"
    # The logits' step: the scale of the DequantizeLinear that gives y.
    last = next(n for n in q.graph.node if "y" in n.output)
    assert last.op_type == "DequantizeLinear", f"y comes from {last.op_type}"
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    step = float(inits[last.input[1]])
    return Case("cnn_quantize_static_qoperator", [], {"x": rand(99, (1, 3, 16, 16))}, ["y"],
                atol=2 * step, rtol=0, model=q)


def cases():
    x4 = rand(1, (1, 4, 6, 6), -2.0, 2.0)
    w_i8 = quantized(2, (6, 4, 3, 3), None, None, np.int8)
    w_scale = f(np.linspace(0.01, 0.03, 6))
    bias = np.random.default_rng(3).integers(-500, 500, size=6).astype(np.int32)
    conv_consts = {"w": w_i8, "ws": w_scale, "wz": np.zeros(6, np.int8), "b": bias}
    out = [
        wrap("qlinear_conv_per_channel_bias", "QLinearConv", x4, 0.016, u8(128), 0.05, u8(100),
             ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], conv_consts,
             attrs={"pads": [1, 1, 1, 1], "strides": [2, 1]}),
        wrap("qlinear_conv_u8_weights_no_bias", "QLinearConv", x4, 0.016, u8(128), 0.08, u8(0),
             ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz"],
             {"w": quantized(4, (4, 2, 3, 3), None, None), "ws": f(0.004), "wz": u8(120)},
             attrs={"group": 2}),
        wrap("qlinear_matmul", "QLinearMatMul", rand(5, (3, 8), -2.0, 2.0), 0.016, u8(128),
             0.04, u8(128), ["xq", "xs", "xz", "b", "bs", "bz", "ys", "yz"],
             {"b": quantized(6, (8, 5), None, None), "bs": f(0.01), "bz": u8(130)}),
        wrap("qgemm_transb_bias_quantized_out", "QGemm", rand(7, (2, 8), -2.0, 2.0), 0.016,
             u8(128), 0.03, u8(128),
             ["xq", "xs", "xz", "b", "bs", "bz", "c", "ys", "yz"],
             {"b": quantized(8, (5, 8), None, None, np.int8), "bs": f(np.linspace(0.01, 0.02, 5)),
              "bz": np.zeros(5, np.int8),
              "c": np.random.default_rng(9).integers(-300, 300, 5).astype(np.int32)},
             domain="com.microsoft", attrs={"transB": 1}),
        wrap("qlinear_add_broadcast", "QLinearAdd", x4, 0.016, u8(128), 0.03, u8(120),
             ["xq", "xs", "xz", "b", "bs", "bz", "ys", "yz"],
             {"b": quantized(10, (4, 1, 6), None, None), "bs": f(0.01), "bz": u8(128)},
             domain="com.microsoft"),
        wrap("qlinear_mul", "QLinearMul", x4, 0.016, u8(128), 0.02, u8(128),
             ["xq", "xs", "xz", "b", "bs", "bz", "ys", "yz"],
             {"b": quantized(11, (1, 4, 6, 6), None, None), "bs": f(0.005), "bz": u8(128)},
             domain="com.microsoft"),
        wrap("qlinear_global_average_pool", "QLinearGlobalAveragePool", x4, 0.016, u8(128),
             0.01, u8(128), ["xq", "xs", "xz", "ys", "yz"], {}, domain="com.microsoft"),
        wrap("qlinear_average_pool", "QLinearAveragePool", x4, 0.016, u8(128), 0.012, u8(128),
             ["xq", "xs", "xz", "ys", "yz"], {}, domain="com.microsoft",
             attrs={"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                    "count_include_pad": 1}),
        wrap("qlinear_sigmoid", "QLinearSigmoid", x4, 0.016, u8(128), 1 / 256, u8(0),
             ["xq", "xs", "xz", "ys", "yz"], {}, domain="com.microsoft"),
        wrap("qlinear_leaky_relu", "QLinearLeakyRelu", x4, 0.016, u8(128), 0.01, u8(40),
             ["xq", "xs", "xz", "ys", "yz"], {}, domain="com.microsoft", attrs={"alpha": 0.2}),
        wrap("qlinear_concat", "QLinearConcat", x4, 0.016, u8(128), 0.02, u8(128),
             ["ys", "yz", "xq", "xs", "xz", "b", "bs", "bz"],
             {"b": quantized(12, (1, 2, 6, 6), None, None), "bs": f(0.01), "bz": u8(100)},
             domain="com.microsoft", attrs={"axis": 1}),
        wrap("maxpool_u8", "MaxPool", x4, 0.016, u8(128), 0.016, u8(128), ["xq"], {},
             attrs={"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
             steps=0.5),
        wrap("qlinear_global_average_pool_channels_last", "QLinearGlobalAveragePool",
             rand(13, (1, 6, 6, 4)), 0.016, u8(128), 0.01, u8(128),
             ["xq", "xs", "xz", "ys", "yz"], {}, domain="com.microsoft",
             attrs={"channels_last": 1}),
        cnn_quantized_by_onnxruntime(),
    ]
    # channels_last is not lowered: refused, naming the op and the attribute.
    out[-2].error = "QLinearGlobalAveragePool: channels_last=1 is not supported"
    gemm_b = {"b": quantized(8, (5, 8), None, None, np.int8), "bs": f(np.linspace(0.01, 0.02, 5)),
              "bz": np.zeros(5, np.int8),
              "c": np.random.default_rng(9).integers(-300, 300, 5).astype(np.int32)}
    out += [
        # alpha scales the bias too: onnxruntime adds C to the i32 product before scaling.
        wrap("qgemm_alpha_bias", "QGemm", rand(7, (2, 8), -2.0, 2.0), 0.016, u8(128), 0.02,
             u8(128), ["xq", "xs", "xz", "b", "bs", "bz", "c", "ys", "yz"], gemm_b,
             domain="com.microsoft", attrs={"transB": 1, "alpha": 0.5}),
        # C as [1, N]: per column, like B's scales.
        wrap("qgemm_bias_row", "QGemm", rand(7, (2, 8), -2.0, 2.0), 0.016, u8(128), 0.03,
             u8(128), ["xq", "xs", "xz", "b", "bs", "bz", "c", "ys", "yz"],
             dict(gemm_b, c=gemm_b["c"].reshape(1, 5)), domain="com.microsoft",
             attrs={"transB": 1}),
        # Malformed: too few inputs, and an output zero point left out.
        wrap("qlinear_conv_too_few_inputs", "QLinearConv", x4, 0.016, u8(128), 0.05, u8(100),
             ["xq", "xs", "xz", "w", "ws"], conv_consts),
        wrap("qlinear_add_no_output_zero_point", "QLinearAdd", x4, 0.016, u8(128), 0.03,
             u8(120), ["xq", "xs", "xz", "b", "bs", "bz", "ys"],
             {"b": quantized(10, (4, 1, 6), None, None), "bs": f(0.01), "bz": u8(128)},
             domain="com.microsoft"),
    ]
    out[-2].error = "QLinearConv: 5 inputs; 7 to 9 expected"
    out[-1].error = "the output's scale and zero point are required"
    return out

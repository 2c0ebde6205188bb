"""onnxruntime's dynamic quantization (`quantize_dynamic`): MatMul and Conv as
DynamicQuantizeLinear → MatMulInteger / ConvInteger → Cast → Mul (u8 activations, i8 or u8
weights, per tensor or per channel), and LSTMs as DynamicQuantizeLSTM (com.microsoft), i8
weights per direction or per gate row, X and h quantized at run time — imported as edgefuse's
QLstm, whose arithmetic is the same scheme.

MatMul's chain (DynamicQuantizeLinear → MatMulInteger → Cast → Mul [→ Add]) compiles to one
DynamicQuantizeMatMul: its exact i32 products and onnxruntime's rounding steps (Cast, Mul,
Add) give onnxruntime's floats bit for bit, which the `fused` tolerances of 0 check, with K
large enough that a float product would not be exact. Without the rules the chain runs as
float ops, within 1e-5.

With one sequence the two agree to float rounding. With a batch, onnxruntime quantizes each
step's h in as many parts as it has threads (one range per part), edgefuse over the whole batch
(one range): equally valid, so those cases allow half of h's quantization step (2/255)."""

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gen import Case, rand


def lstm_model(seed, T, B, I, H, direction, with_h0):
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    w = (rng.standard_normal((D, 4 * H, I)) * 0.4).astype(np.float32)
    r = (rng.standard_normal((D, 4 * H, H)) * 0.3).astype(np.float32)
    b = (rng.standard_normal((D, 8 * H)) * 0.2).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"),
             numpy_helper.from_array(b, "B")]
    ins = ["x", "W", "R", "B"]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, B, I])]
    if with_h0:
        ins += ["", "h0"]
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [D, B, H]))
    node = helper.make_node("LSTM", ins, ["y", "y_h"], hidden_size=H, direction=direction)
    graph = helper.make_graph(
        [node], "lstm", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [T, D, B, H]),
         helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [D, B, H])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def quantized(name, seed, per_channel, T=5, B=2, I=8, H=16, direction="forward", with_h0=False):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = lstm_model(seed, T, B, I, H, direction, with_h0)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "f.onnx"), os.path.join(d, "q.onnx")
        onnx.save(model, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel,
                         op_types_to_quantize=["LSTM"])
        q = onnx.load(dst)
    ops = [n.op_type for n in q.graph.node]
    assert "DynamicQuantizeLSTM" in ops, ops
    D = 2 if direction == "bidirectional" else 1
    inputs = {"x": rand(seed + 1, (T, B, I), -2.0, 2.0)}
    if with_h0:
        inputs["h0"] = rand(seed + 2, (D, B, H))
    atol = 1e-5 if B == 1 else 0.5 * 2 / 255
    return Case(name, [], inputs, ["y", "y_h"], model=q, atol=atol, rtol=1e-5)


INT8_MATMUL = {"ops": ["DynamicQuantizeMatMul"], "atol": 0.0, "rtol": 0.0}


def dynamic(name, model, inputs, per_channel, weight_type="QInt8", want=("MatMulInteger",),
            fused=None, rtol=1e-5):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.ir_version = 8
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "f.onnx"), os.path.join(d, "q.onnx")
        onnx.save(model, src)
        quantize_dynamic(src, dst, weight_type=getattr(QuantType, weight_type),
                         per_channel=per_channel)
        q = onnx.load(dst)
    ops = [n.op_type for n in q.graph.node]
    for w in want:
        assert w in ops, ops
    return Case(name, [], inputs, [o.name for o in q.graph.output], model=q, atol=1e-5,
                rtol=rtol, fused=fused)


def linear_model(seed, rows, k, n, relu_then_second=False):
    """y = x·W + b (and, with `relu_then_second`, Relu then a second layer): what a
    PyTorch Linear exports as."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((k, n)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(n) * 0.1).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y0" if relu_then_second else "y"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    out_n = n
    if relu_then_second:
        w2 = (rng.standard_normal((n, 7)) * 0.3).astype(np.float32)
        nodes += [helper.make_node("Relu", ["y0"], ["r"]),
                  helper.make_node("MatMul", ["r", "w2"], ["y"])]
        inits.append(numpy_helper.from_array(w2, "w2"))
        out_n = 7
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, out_n])],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mlp_model(seed, shape, widths, bias=True):
    """Layers `x·W + b` (b when `bias`) of the given output widths, ReLU between them, over an
    input of `shape` (2-D or 3-D; the last axis is K)."""
    rng = np.random.default_rng(seed)
    nodes, inits, k, cur = [], [], shape[-1], "x"
    for i, n in enumerate(widths):
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "y" if i == len(widths) - 1 else f"h{i}"
        mm = f"m{i}" if bias else (f"m{i}" if i < len(widths) - 1 else out)
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [mm]))
        if bias:
            b = (rng.standard_normal(n) * 0.1).astype(np.float32)
            inits.append(numpy_helper.from_array(b, f"b{i}"))
            nodes.append(helper.make_node("Add", [mm, f"b{i}"], [out if i == len(widths) - 1
                                                                 else f"a{i}"]))
            mm = f"a{i}"
        if i < len(widths) - 1:
            nodes.append(helper.make_node("Relu", [mm], [out]))
        cur, k = out, n
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape[:-1]) + [k])],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def integer_only():
    """DynamicQuantizeLinear → MatMulInteger with the i32 product as the output (no Cast, no
    Mul): not the chain, so it stays float ops, exact for this K (integers compared exactly)."""
    rng = np.random.default_rng(40)
    w = rng.integers(-128, 128, size=(24, 6)).astype(np.int8)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["y"])]
    return Case("dynamic_matmul_integer_output", nodes, {"x": rand(41, (3, 24), -1.0, 2.0)},
                ["y", "xs"], consts={"w": w, "wz": np.array(3, dtype=np.int8)})


def ms_dynamic_matmul(name, seed, wtype, per_column, bias, scale=None):
    """onnxruntime's fused op, com.microsoft DynamicQuantizeMatMul, written directly. `scale`:
    b_scale values the op does not take (zero, negative), which import as float ops (exact
    here: i8 weights keep K = 300's partial sums within 2^24)."""
    rng = np.random.default_rng(seed)
    k, n = 300, 12
    if wtype == np.int8:
        w = rng.integers(-128, 128, size=(k, n)).astype(np.int8)
        zp = np.zeros(n if per_column else (), np.int8)
    else:
        w = rng.integers(0, 256, size=(k, n)).astype(np.uint8)
        zp = rng.integers(100, 150, size=n if per_column else ()).astype(np.uint8)
    drawn = (rng.uniform(0.001, 0.01, size=n if per_column else ())).astype(np.float32)
    scale = drawn if scale is None else np.array(scale, np.float32)
    consts = {"B": w, "b_scale": scale, "b_zero_point": zp}
    if bias:
        consts["bias"] = (rng.standard_normal(n) * 0.1).astype(np.float32)
    ins = ["A", "B", "b_scale", "b_zero_point"] + (["bias"] if bias else [])
    a = rand(seed + 1, (2, 3, k), -1.0, 2.0)
    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeMatMul", ins, ["y"], domain="com.microsoft")], name,
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, list(a.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, n])],
        initializer=[numpy_helper.from_array(v, c) for c, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    if scale is not drawn:
        return Case(name, [], {"A": a}, ["y"], model=model, atol=0.0, rtol=0.0,
                    fused={"ops": ["MatMul"], "atol": 0.0, "rtol": 0.0})
    return Case(name, [], {"A": a}, ["y"], model=model, atol=1e-5, rtol=1e-5,
                fused={"ops": ["DynamicQuantizeMatMul"]})


def conv_model(seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(6) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 5, 5])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


INT8_CONV = {"ops": ["DynamicQuantizeConv"], "atol": 0.0, "rtol": 0.0}


def conv_net(seed, shape, layers):
    """Conv layers over an input of `shape` (NCHW), each a dict: `m` output channels, `k`
    kernel, and optionally `stride`, `pads` (the Conv's), `group`, `bias` (default True),
    `act` ("Relu", "Clip" 0..6 or "Sigmoid") and `tf_pad` (an explicit zero Pad before the
    Conv, as TF/Keras exports write "same" padding: [top, left, bottom, right])."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur, c = [], [], "x", shape[1]
    for i, l in enumerate(layers):
        m, k, group = l["m"], l["k"], l.get("group", 1)
        if "tf_pad" in l:
            t, lf, b, r = l["tf_pad"]
            inits.append(numpy_helper.from_array(
                np.array([0, 0, t, lf, 0, 0, b, r], np.int64), f"p{i}"))
            nodes.append(helper.make_node("Pad", [cur, f"p{i}"], [f"pad{i}"]))
            cur = f"pad{i}"
        w = (rng.standard_normal((m, c // group, k, k)) / np.sqrt(c // group * k * k))
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        ins = [cur, f"w{i}"]
        if l.get("bias", True):
            inits.append(numpy_helper.from_array(
                (rng.standard_normal(m) * 0.1).astype(np.float32), f"b{i}"))
            ins.append(f"b{i}")
        out = f"c{i}"
        attrs = {"strides": [l.get("stride", 1)] * 2, "group": group}
        if "pads" in l:
            attrs["pads"] = l["pads"]
        nodes.append(helper.make_node("Conv", ins, [out], **attrs))
        act = l.get("act")
        if act == "Clip":
            inits += [numpy_helper.from_array(np.array(0.0, np.float32), f"lo{i}"),
                      numpy_helper.from_array(np.array(6.0, np.float32), f"hi{i}")]
            nodes.append(helper.make_node("Clip", [out, f"lo{i}", f"hi{i}"], [f"a{i}"]))
            out = f"a{i}"
        elif act:
            nodes.append(helper.make_node(act, [out], [f"a{i}"]))
            out = f"a{i}"
        cur, c = out, m
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def dyn_conv(name, seed, shape, layers, lo=-1.0, hi=1.0, weight_type="QInt8", fused=INT8_CONV,
             x=None):
    return dynamic(name, conv_net(seed, shape, layers),
                   {"x": rand(seed + 1, shape, lo, hi) if x is None else x}, per_channel=False,
                   weight_type=weight_type, want=("ConvInteger",), fused=fused)


def cases():
    return [
        dynamic("dynamic_matmul_per_tensor", linear_model(10, 4, 16, 8),
                {"x": rand(11, (4, 16), -2.0, 2.0)}, per_channel=False),
        dynamic("dynamic_matmul_per_column_two_layers", linear_model(12, 3, 32, 12, True),
                {"x": rand(13, (3, 32), -1.0, 3.0)}, per_channel=True),
        dynamic("dynamic_matmul_u8_weights", linear_model(14, 2, 300, 5),
                {"x": rand(15, (2, 300))}, per_channel=False, weight_type="QUInt8"),
        # The chain as one DynamicQuantizeMatMul: one row (gemv), a few rows, many rows
        # (qgemm panels, split between threads), 3-D inputs, K past f32's exact sums.
        dynamic("dynamic_int8_row_per_tensor_bias", mlp_model(20, (1, 1024), [160]),
                {"x": rand(21, (1, 1024), -3.0, 2.0)}, per_channel=False, fused=INT8_MATMUL),
        dynamic("dynamic_int8_rows_per_channel_u8", mlp_model(22, (3, 700), [64]),
                {"x": rand(23, (3, 700), -1.0, 4.0)}, per_channel=True, weight_type="QUInt8",
                fused=INT8_MATMUL),
        dynamic("dynamic_int8_3d_per_channel_bias", mlp_model(24, (2, 5, 640), [33, 17]),
                {"x": rand(25, (2, 5, 640), -2.0, 2.0)}, per_channel=True, fused=INT8_MATMUL),
        dynamic("dynamic_int8_3d_many_rows_no_bias", mlp_model(26, (2, 40, 520), [70], False),
                {"x": rand(27, (2, 40, 520), -0.5, 3.0)}, per_channel=False, fused=INT8_MATMUL),
        dynamic("dynamic_int8_many_rows_u8_per_tensor", mlp_model(28, (64, 300), [96, 24]),
                {"x": rand(29, (64, 300), -2.0, 2.0)}, per_channel=False,
                weight_type="QUInt8", fused=INT8_MATMUL),
        dynamic("dynamic_int8_all_negative_input", mlp_model(30, (2, 256), [20]),
                {"x": rand(31, (2, 256), -3.0, -0.5)}, per_channel=True, fused=INT8_MATMUL),
        dynamic("dynamic_int8_zero_input", mlp_model(32, (2, 64), [8]),
                {"x": np.zeros((2, 64), np.float32)}, per_channel=False, fused=INT8_MATMUL),
        integer_only(),
        ms_dynamic_matmul("dynamic_ms_matmul_i8_per_column_bias", 50, np.int8, True, True),
        ms_dynamic_matmul("dynamic_ms_matmul_u8_per_tensor", 52, np.uint8, False, False),
        ms_dynamic_matmul("dynamic_ms_matmul_zero_scale", 54, np.int8, False, True,
                          scale=0.0),
        ms_dynamic_matmul("dynamic_ms_matmul_negative_zero_scales", 56, np.int8, True, True,
                          scale=[0.01, -0.02, 0.0, -0.005] * 3),
        dynamic("dynamic_conv", conv_model(16), {"x": rand(17, (1, 3, 9, 9))},
                per_channel=False, want=("ConvInteger", "DynamicQuantizeLinear"),
                fused=INT8_CONV),
        # The Conv chain as one DynamicQuantizeConv, bit for bit: every QConv plan (1×1 in
        # place, batched small planes, shifted stride 1, unfolded, grouped, depthwise on the
        # fp32 planar and blocked kernels), u8 weights (rows shifted into i8), K past f32's
        # exact sums, TF-style Pad folded in, ReLU / Clip in the epilogue.
        dyn_conv("dynamic_conv_pointwise_relu", 60, (1, 24, 20, 20),
                 [{"m": 40, "k": 1, "act": "Relu"}, {"m": 16, "k": 1}], -2.0, 3.0),
        dyn_conv("dynamic_conv_batch_small_planes", 62, (3, 8, 6, 6),
                 [{"m": 12, "k": 3, "pads": [1, 1, 1, 1], "act": "Clip"}, {"m": 5, "k": 1}]),
        dyn_conv("dynamic_conv_stride1_padded_u8", 64, (1, 16, 18, 18),
                 [{"m": 24, "k": 3, "pads": [1, 1, 1, 1]}], -0.5, 2.5, weight_type="QUInt8"),
        dyn_conv("dynamic_conv_deep_k_stride2", 66, (1, 96, 15, 15),
                 [{"m": 20, "k": 3, "stride": 2, "pads": [1, 1, 1, 1], "bias": False}]),
        dyn_conv("dynamic_conv_grouped_u8", 68, (2, 12, 10, 10),
                 [{"m": 8, "k": 3, "group": 4, "pads": [0, 0, 1, 1]}], weight_type="QUInt8"),
        # (24 · 56 · 56 values: quantized in two parts on two threads.)
        dyn_conv("dynamic_conv_depthwise_wide_tf_pad", 70, (1, 24, 56, 56),
                 [{"m": 24, "k": 3, "group": 24, "stride": 2, "tf_pad": [0, 0, 1, 1],
                   "act": "Clip"},
                  {"m": 24, "k": 5, "group": 24, "tf_pad": [2, 2, 2, 2], "act": "Relu"}],
                 -3.0, 3.0),
        dyn_conv("dynamic_conv_depthwise_small_planes", 72, (2, 40, 7, 7),
                 [{"m": 40, "k": 3, "group": 40, "pads": [1, 1, 1, 1], "act": "Relu"},
                  {"m": 24, "k": 1}], weight_type="QUInt8"),
        dyn_conv("dynamic_conv_all_negative", 74, (1, 8, 9, 9),
                 [{"m": 8, "k": 3, "group": 8, "pads": [1, 1, 1, 1]}, {"m": 6, "k": 1}],
                 -3.0, -0.5),
        dyn_conv("dynamic_conv_zero_input", 76, (1, 4, 8, 8),
                 [{"m": 6, "k": 3, "pads": [1, 1, 1, 1]}],
                 x=np.zeros((1, 4, 8, 8), np.float32)),
        # An activation the epilogue does not clamp: applied after it, in f32.
        dyn_conv("dynamic_conv_sigmoid", 78, (1, 6, 12, 12),
                 [{"m": 10, "k": 3, "pads": [1, 1, 1, 1], "act": "Sigmoid"}],
                 fused={"ops": ["DynamicQuantizeConv"], "atol": 1e-6, "rtol": 1e-6}),
        quantized("dynamic_lstm_forward", 1, per_channel=False),
        quantized("dynamic_lstm_per_row", 2, per_channel=True),
        quantized("dynamic_lstm_bidirectional_h0", 3, per_channel=True,
                  direction="bidirectional", with_h0=True),
        quantized("dynamic_lstm_batch1_long", 4, per_channel=False, T=12, B=1, I=5, H=32),
        quantized("dynamic_lstm_batch1_bidirectional_per_row", 5, per_channel=True, B=1,
                  direction="bidirectional", with_h0=True),
    ]

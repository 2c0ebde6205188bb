"""onnxruntime's dynamic quantization (`quantize_dynamic`) of LSTMs: DynamicQuantizeLSTM
(com.microsoft), i8 weights per direction or per gate row, X and h quantized at run time —
imported as edgefuse's QLstm, whose arithmetic is the same scheme.

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


def cases():
    return [
        quantized("dynamic_lstm_forward", 1, per_channel=False),
        quantized("dynamic_lstm_per_row", 2, per_channel=True),
        quantized("dynamic_lstm_bidirectional_h0", 3, per_channel=True,
                  direction="bidirectional", with_h0=True),
        quantized("dynamic_lstm_batch1_long", 4, per_channel=False, T=12, B=1, I=5, H=32),
        quantized("dynamic_lstm_batch1_bidirectional_per_row", 5, per_channel=True, B=1,
                  direction="bidirectional", with_h0=True),
    ]

"""Non-finite and extreme values through the element-wise ops, pooling, reductions and
Softmax: NaN, ±inf, ±0, ±f32::MAX, denormals."""

import numpy as np

from gen import single, rand

F32 = np.float32


def special():
    v = [np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-40, -1e-40, 1.0, -1.0, 88.0,
         -88.0, 100.0, -100.0, 0.5, -0.5, 20.0, -20.0, 1e-3]
    return np.array(v, F32).reshape(4, 5)


def cases():
    x = special()
    out = []
    # Relu and Clip map NaN to their lower bound (onnxruntime keeps NaN): the contract every fused
    # Conv/Gemm clamp shares (`cpu::ops::nn::conv::Epilogue::clamp`), so they see no NaN here.
    finite = np.nan_to_num(x, nan=7.0)
    out.append(single("special_relu", "Relu", {"x": finite}))
    out.append(single("special_clip", "Clip", {"x": finite},
                      consts={"lo": np.array(-1, F32), "hi": np.array(1, F32)}, opset=13))
    for op in ["Abs", "Neg", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal",
               "Floor", "Ceil", "Round", "Softplus", "HardSwish", "Erf"]:
        out.append(single(f"special_{op.lower()}", op, {"x": x}))
    out += [
        single("special_mish", "Mish", {"x": x}, opset=18),
        single("special_gelu", "Gelu", {"x": x}, opset=20),
        single("special_elu", "Elu", {"x": x}),
        single("special_leaky_relu", "LeakyRelu", {"x": x}),
        single("special_hard_sigmoid", "HardSigmoid", {"x": x}),
        single("special_max", "Max", {"a": x, "b": x.T.reshape(4, 5).copy()}),
        single("special_min", "Min", {"a": x, "b": x.T.reshape(4, 5).copy()}),
        single("special_add", "Add", {"a": x, "b": x[::-1].copy()}),
        single("special_div", "Div", {"a": x, "b": x.T.reshape(4, 5).copy()}),
        single("special_pow", "Pow", {"a": x}, consts={"b": np.array(2, F32)}),
        single("special_equal", "Equal", {"a": x, "b": x.copy()}),
        single("special_less", "Less", {"a": x, "b": x[::-1].copy()}),
        single("special_softmax_inf", "Softmax", {"x": np.array([[0, 1, -np.inf, 2],
                                                                [-np.inf, 0, 5, -np.inf]], F32)},
               opset=13),
        single("special_softmax_large", "Softmax", {"x": np.array([[1e30, 1e30, 0, -1e30]], F32)},
               opset=13),
        single("special_log_softmax_inf", "LogSoftmax", {"x": np.array([[0, 1, -np.inf, 2]], F32)},
               opset=13),
        single("special_reduce_max", "ReduceMax", {"x": x}, {"axes": [1]}, opset=13),
        single("special_reduce_sum", "ReduceSum", {"x": x}, consts={"a": np.array([1], np.int64)}),
        single("special_maxpool", "MaxPool", {"x": x.reshape(1, 1, 4, 5)}, {"kernel_shape": [2, 2]}),
        single("special_global_maxpool", "GlobalMaxPool", {"x": x.reshape(1, 4, 5, 1)}),
        single("special_cast_bool", "Cast", {"x": x}, {"to": 9}),
    ]
    return out

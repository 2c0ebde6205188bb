"""Normalisations: LayerNormalization (opset 17), InstanceNormalization, LpNormalization."""

import numpy as np
from onnx import helper

from gen import Case, single, rand


def cases():
    x = rand(10, (2, 3, 4, 5))
    ln = lambda name, x, axis, scale, bias=None, **kw: single(
        name, "LayerNormalization", {"x": x}, {"axis": axis, **kw.pop("attrs", {})},
        consts={"s": scale, **({"b": bias} if bias is not None else {})}, atol=1e-5, rtol=1e-4,
        **kw)
    return [
        ln("layernorm_last_axis", x, -1, rand(11, (5,), 0.5, 1.5), rand(12, (5,))),
        ln("layernorm_axis1", x, 1, rand(13, (3, 4, 5), 0.5, 1.5), rand(14, (3, 4, 5))),
        ln("layernorm_no_bias", x, 2, rand(15, (4, 5), 0.5, 1.5)),
        ln("layernorm_broadcast_scale", x, 2, rand(16, (1, 5), 0.5, 1.5), rand(17, (4, 1)),
           attrs={"epsilon": 1e-3}),
        ln("layernorm_constant_rows", np.ones((3, 8), np.float32), -1,
           rand(18, (8,), 0.5, 1.5), rand(19, (8,))),
        # Scale and bias fed at run time.
        single("layernorm_runtime_params", "LayerNormalization",
               {"x": rand(20, (4, 6)), "s": rand(21, (6,)), "b": rand(22, (6,))},
               {"axis": -1}, atol=1e-5, rtol=1e-4),
        ln("layernorm_mean_output_refused", x, -1, rand(11, (5,)), rand(12, (5,)),
           outputs=["y", "mean"], error="Mean and InvStdDev"),
        single("instancenorm_4d", "InstanceNormalization", {"x": rand(23, (2, 3, 4, 5), -3, 3)},
               {"epsilon": 1e-4},
               consts={"s": rand(24, (3,), 0.5, 1.5), "b": rand(25, (3,))}, atol=1e-5, rtol=1e-4),
        single("instancenorm_3d", "InstanceNormalization", {"x": rand(26, (1, 4, 7))},
               consts={"s": rand(27, (4,)), "b": rand(28, (4,))}, atol=1e-5, rtol=1e-4),
        single("instancenorm_runtime_params", "InstanceNormalization",
               {"x": rand(29, (2, 2, 3, 3)), "s": rand(30, (2,)), "b": rand(31, (2,))},
               atol=1e-5, rtol=1e-4),
        single("lpnorm_p2_last", "LpNormalization",
               {"x": np.array([[0, 0, 0], [3, -4, 0], [1, 2, 2]], np.float32)}, {"p": 2}),
        single("lpnorm_p1_axis0", "LpNormalization", {"x": rand(32, (3, 4, 2))},
               {"axis": 0, "p": 1}),
        single("lpnorm_p2_axis1", "LpNormalization", {"x": rand(33, (2, 3, 4))}, {"axis": 1}),
        single("lpnorm_p3_refused", "LpNormalization", {"x": rand(34, (2, 3))}, {"p": 3},
               error="p=3"),
    ]

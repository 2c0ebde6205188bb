"""A first handful of operators, one case each: the harness's own check."""

import numpy as np
from onnx import helper

from gen import Case, single, rand, ints


def cases():
    x = rand(1, (2, 3, 4, 5))
    return [
        single("relu", "Relu", {"x": x}),
        single("add_broadcast", "Add", {"a": x, "b": rand(2, (3, 1, 5))}),
        single("softmax_axis1", "Softmax", {"x": x}, {"axis": 1}),
        single(
            "conv_pads_strides_group",
            "Conv",
            {"x": rand(3, (1, 4, 9, 8))},
            {"pads": [1, 0, 2, 1], "strides": [2, 1], "group": 2},
            consts={"w": rand(4, (6, 2, 3, 3)), "b": rand(5, (6,))},
        ),
        single("gather_negative", "Gather", {"x": x}, {"axis": 1},
               consts={"i": np.array([[-1, 0], [2, 1]], dtype=np.int64)}),
        single("nonzero_unsupported", "NonZero", {"x": x}, error="NonZero"),
    ]

"""Values that make a node meaningless (indices out of range, a zero step, sizes that cannot be):
onnxruntime fails on them at run time; and nodes onnxruntime runs but no edgefuse backend can (3-D
convolution and pooling). edgefuse must refuse them when compiling — the compiler itself, not a
backend when the file is loaded — in one line naming the node, never panic. (Graphs that onnx's own shape inference rejects cannot be written here;
`compiler/tests/hostile_graphs.rs` holds those.)"""

import numpy as np
from onnx import helper

from gen import Case, single, rand

N = helper.make_node
I64 = np.int64


def cases():
    x = rand(1, (2, 3, 4))
    return [
        single("gather_index_out_of_range", "Gather", {"x": x}, {"axis": 1},
               consts={"i": np.array([0, 3], I64)}, error="index 3 is out of range for axis 1 of size 3"),
        single("gather_negative_index_out_of_range", "Gather", {"x": x}, {"axis": 2},
               consts={"i": np.array([-5], I64)}, error="index -5 is out of range"),
        single("range_delta_zero", "Range", {},
               consts={"a": np.array(0, I64), "b": np.array(5, I64), "d": np.array(0, I64)},
               error="delta is zero"),
        single("dropout_training", "Dropout", {"x": x},
               consts={"r": np.array(0.5, np.float32), "t": np.array(True)}, error="training"),
        single("clip_bound_not_scalar", "Clip", {"x": x},
               consts={"lo": np.array([0.0, 1.0], np.float32)}, error="scalar"),
        single("resize_scale_zero", "Resize", {"x": rand(2, (1, 1, 2, 2))},
               {"mode": "nearest"}, consts={"s": np.array([1, 1, 0, 2], np.float32)},
               order=["x", None, "s"], error="scale 0 is not a positive number"),
        single("conv_kernel_larger_than_input", "Conv", {"x": rand(3, (1, 2, 2, 2))},
               consts={"w": rand(4, (3, 2, 3, 3))}, error="does not fit input 2"),
        single("conv3d_1", "Conv", {"x": rand(5, (1, 2, 4, 4, 4))},
               consts={"w": rand(6, (3, 2, 3, 3, 3))},
               error='"conv3d_1" Conv: 3-D convolution (kernel [3, 3, 3]) is not supported; 1-D and 2-D are'),
        single("conv_transpose_3d", "ConvTranspose", {"x": rand(7, (1, 2, 2, 2, 2))},
               consts={"w": rand(8, (2, 3, 2, 2, 2))},
               error="3-D transposed convolution (kernel [2, 2, 2]) is not supported"),
        single("max_pool_3d", "MaxPool", {"x": rand(9, (1, 2, 4, 4, 4))},
               {"kernel_shape": [2, 2, 2]}, error="3-D pooling (kernel [2, 2, 2]) is not supported"),
        single("average_pool_3d", "AveragePool", {"x": rand(10, (1, 2, 4, 4, 4))},
               {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]},
               error="3-D pooling (kernel [2, 2, 2]) is not supported"),
        single("conv_integer_3d", "ConvInteger",
               {"x": np.random.default_rng(11).integers(0, 255, (1, 1, 3, 3, 3)).astype(np.uint8)},
               consts={"w": np.ones((1, 1, 2, 2, 2), np.uint8)},
               error="3-D convolution (kernel [2, 2, 2]) is not supported"),
        single("reshape_size_mismatch", "Reshape", {"x": x},
               consts={"s": np.array([5, 5], I64)}, error="cannot reshape [2, 3, 4] into [5, 5]"),
    ]

"""Convolutions, transposed convolutions, pooling, BatchNormalization, Gemm, MatMul and
Softmax/LogSoftmax with the attribute and opset variants real exports use."""

import numpy as np

from gen import single, rand


def conv(name, x, w, attrs=None, bias=True, **kw):
    consts = {"w": w}
    if bias:
        consts["b"] = rand(99, (w.shape[0],))
    return single(name, "Conv", {"x": x}, attrs or {}, consts=consts, **kw)


def convt(name, x, w, attrs=None, bias=True, groups=1, **kw):
    consts = {"w": w}
    if bias:
        consts["b"] = rand(98, (w.shape[1] * groups,))
    return single(name, "ConvTranspose", {"x": x}, attrs or {}, consts=consts, **kw)


def cases():
    x = rand(1, (1, 4, 9, 8))
    x2 = rand(2, (2, 3, 7, 7))
    out = [
        conv("conv_3x3_pads", x, rand(3, (5, 4, 3, 3)), {"pads": [1, 1, 1, 1]}),
        conv("conv_kernel_shape_attr", x, rand(3, (5, 4, 3, 3)), {"kernel_shape": [3, 3]}),
        conv("conv_no_bias", x, rand(4, (5, 4, 3, 3)), bias=False),
        conv("conv_asym_pads_stride2", x, rand(5, (6, 4, 3, 3)),
             {"pads": [0, 1, 2, 0], "strides": [2, 2]}),
        conv("conv_same_upper_stride2", x, rand(6, (3, 4, 3, 3)),
             {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
        conv("conv_same_lower_stride2", x, rand(6, (3, 4, 3, 3)),
             {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
        conv("conv_same_upper_even_kernel", x, rand(7, (3, 4, 4, 4)), {"auto_pad": "SAME_UPPER"}),
        conv("conv_same_lower_even_kernel", x, rand(7, (3, 4, 4, 4)), {"auto_pad": "SAME_LOWER"}),
        conv("conv_valid", x, rand(8, (3, 4, 3, 2)), {"auto_pad": "VALID", "strides": [1, 2]}),
        conv("conv_dilation2", x, rand(9, (3, 4, 3, 3)), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
        conv("conv_dilation_asym", x, rand(9, (3, 4, 3, 3)), {"dilations": [2, 1]}),
        conv("conv_groups2", x, rand(10, (6, 2, 3, 3)), {"group": 2, "pads": [1, 1, 1, 1]}),
        conv("conv_depthwise", x, rand(11, (4, 1, 3, 3)), {"group": 4, "pads": [1, 1, 1, 1]}),
        conv("conv_depthwise_stride2", x, rand(11, (4, 1, 3, 3)),
             {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
        conv("conv_depthwise_multiplier2", x, rand(12, (8, 1, 3, 3)), {"group": 4}),
        conv("conv_depthwise_5x5", rand(13, (1, 8, 10, 10)), rand(14, (8, 1, 5, 5)),
             {"group": 8, "pads": [2, 2, 2, 2]}),
        conv("conv_5x5", x2, rand(15, (4, 3, 5, 5)), {"pads": [2, 2, 2, 2]}),
        conv("conv_7x7_stride2", rand(16, (1, 3, 12, 12)), rand(17, (4, 3, 7, 7)),
             {"pads": [3, 3, 3, 3], "strides": [2, 2]}),
        conv("conv_1x1", x2, rand(18, (5, 3, 1, 1))),
        conv("conv_1x1_stride2", x2, rand(18, (5, 3, 1, 1)), {"strides": [2, 2]}),
        conv("conv_1d", rand(19, (2, 3, 11)), rand(20, (4, 3, 3)), {"pads": [1, 2], "strides": [2]}),
        conv("conv_1d_dilated_groups", rand(19, (1, 4, 11)), rand(21, (4, 2, 3)),
             {"dilations": [2], "group": 2}),
        conv("conv_1d_same_upper", rand(19, (1, 3, 10)), rand(20, (4, 3, 3)),
             {"auto_pad": "SAME_UPPER", "strides": [3]}),
        conv("conv_batch_winograd", rand(24, (2, 8, 10, 10)), rand(25, (8, 8, 3, 3)),
             {"pads": [1, 1, 1, 1]}),
        single("conv_weights_input", "Conv", {"x": x, "w": rand(26, (3, 4, 3, 3))}),
    ]
    # ConvTranspose.
    xt = rand(30, (1, 4, 5, 4))
    out += [
        convt("convt_basic", xt, rand(31, (4, 3, 3, 3))),
        convt("convt_stride2", xt, rand(31, (4, 3, 3, 3)), {"strides": [2, 2]}),
        convt("convt_stride2_pads", xt, rand(31, (4, 3, 3, 3)),
              {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
        convt("convt_asym_pads", xt, rand(31, (4, 3, 3, 3)),
              {"strides": [2, 1], "pads": [1, 0, 0, 2]}),
        convt("convt_output_padding", xt, rand(32, (4, 2, 3, 3)),
              {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
        convt("convt_output_padding_asym", xt, rand(32, (4, 2, 3, 3)),
              {"strides": [3, 2], "output_padding": [2, 0]}),
        convt("convt_output_shape", xt, rand(33, (4, 2, 3, 3)),
              {"strides": [2, 2], "output_shape": [10, 8]}),
        convt("convt_output_shape_same_lower", xt, rand(33, (4, 2, 3, 3)),
              {"strides": [2, 2], "output_shape": [10, 9], "auto_pad": "SAME_LOWER"}),
        convt("convt_same_upper", xt, rand(33, (4, 2, 3, 3)),
              {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        convt("convt_same_lower", xt, rand(33, (4, 2, 3, 3)),
              {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
        convt("convt_groups", xt, rand(34, (4, 3, 3, 3)), {"group": 2, "strides": [2, 2]}, groups=2),
        convt("convt_depthwise", xt, rand(34, (4, 1, 4, 4)),
              {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}, groups=4),
        convt("convt_dilations", xt, rand(35, (4, 3, 3, 3)), {"dilations": [2, 2]}),
        convt("convt_kernel2_stride2", xt, rand(36, (4, 3, 2, 2)), {"strides": [2, 2]}),
        convt("convt_no_bias", xt, rand(36, (4, 3, 2, 2)), {"strides": [2, 2]}, bias=False),
        convt("convt_1d", rand(37, (2, 3, 6)), rand(38, (3, 2, 4)),
              {"strides": [2], "pads": [1, 1]}),
    ]
    # Pooling.
    p = rand(40, (1, 3, 7, 8))
    for op in ["MaxPool", "AveragePool"]:
        lo = "maxpool" if op == "MaxPool" else "avgpool"
        out += [
            single(f"{lo}_2x2_s2", op, {"x": p}, {"kernel_shape": [2, 2], "strides": [2, 2]}),
            single(f"{lo}_3x3_s2_pads", op, {"x": p},
                   {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
            single(f"{lo}_3x3_s1_default_strides", op, {"x": p}, {"kernel_shape": [3, 3]}),
            single(f"{lo}_ceil_mode", op, {"x": p},
                   {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
            single(f"{lo}_ceil_mode_pads", op, {"x": p},
                   {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 0, 1, 0], "ceil_mode": 1}),
            single(f"{lo}_same_upper", op, {"x": p},
                   {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
            single(f"{lo}_same_lower", op, {"x": p},
                   {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
            single(f"{lo}_valid", op, {"x": p},
                   {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "VALID"}),
            single(f"{lo}_asym_pads", op, {"x": p},
                   {"kernel_shape": [3, 3], "pads": [0, 1, 2, 0]}),
            single(f"{lo}_1d", op, {"x": rand(41, (2, 3, 9))},
                   {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
        ]
    out += [
        single("maxpool_dilations", "MaxPool", {"x": p},
               {"kernel_shape": [2, 2], "dilations": [2, 2]}, opset=12),
        single("maxpool_dilations_strides_pads", "MaxPool", {"x": p},
               {"kernel_shape": [3, 3], "dilations": [2, 1], "strides": [2, 1], "pads": [2, 1, 2, 1]},
               opset=12),
        single("maxpool_negative_inputs_pads", "MaxPool", {"x": p - 5.0},
               {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        single("maxpool_indices", "MaxPool", {"x": p}, {"kernel_shape": [2, 2]}, outputs=2,
               error="Indices"),
        single("avgpool_count_include_pad", "AveragePool", {"x": p},
               {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                "count_include_pad": 1}),
        single("avgpool_count_include_pad_asym", "AveragePool", {"x": p},
               {"kernel_shape": [3, 3], "pads": [0, 2, 1, 0], "count_include_pad": 1}),
        single("avgpool_count_include_pad_ceil", "AveragePool", {"x": p},
               {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                "count_include_pad": 1, "ceil_mode": 1}),
        single("avgpool_count_include_pad_same_upper", "AveragePool", {"x": p},
               {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER",
                "count_include_pad": 1}),
        single("avgpool_dilations", "AveragePool", {"x": p},
               {"kernel_shape": [2, 2], "dilations": [2, 2]}, opset=19),
        single("global_avgpool", "GlobalAveragePool", {"x": p}),
        single("global_maxpool", "GlobalMaxPool", {"x": p}),
        single("global_avgpool_1d", "GlobalAveragePool", {"x": rand(43, (2, 3, 9))}),
        single("global_maxpool_3d", "GlobalMaxPool", {"x": rand(44, (1, 2, 3, 4, 5))}),
    ]
    # BatchNormalization (inference).
    bn = {"s": rand(50, (3,)), "b": rand(51, (3,)), "m": rand(52, (3,)), "v": rand(53, (3,), 0.1, 2)}
    out += [
        single("batchnorm", "BatchNormalization", {"x": x2}, consts=bn),
        single("batchnorm_epsilon", "BatchNormalization", {"x": x2}, {"epsilon": 0.1}, consts=bn),
        single("batchnorm_2d_input", "BatchNormalization", {"x": rand(54, (4, 3))}, consts=bn),
        single("batchnorm_3d_input", "BatchNormalization", {"x": rand(55, (2, 3, 6))}, consts=bn),
        single("batchnorm_opset9", "BatchNormalization", {"x": x2}, consts=bn, opset=11),
        single("batchnorm_after_conv", "BatchNormalization", {"x": x2},
               consts=bn),
    ]
    # Gemm.
    A, B = rand(60, (3, 4)), rand(61, (4, 5))
    out += [
        single("gemm_plain", "Gemm", {"a": A, "b": B}),
        single("gemm_const_b_bias", "Gemm", {"a": A}, consts={"b": B, "c": rand(62, (5,))}),
        single("gemm_trans_a", "Gemm", {"a": A.T.copy()}, {"transA": 1}, consts={"b": B}),
        single("gemm_trans_b", "Gemm", {"a": A}, {"transB": 1},
               consts={"b": B.T.copy(), "c": rand(62, (5,))}),
        single("gemm_trans_both", "Gemm", {"a": A.T.copy(), "b": B.T.copy()},
               {"transA": 1, "transB": 1}),
        single("gemm_alpha_beta", "Gemm", {"a": A}, {"alpha": 0.5, "beta": 2.0},
               consts={"b": B, "c": rand(63, (3, 5))}),
        single("gemm_c_column", "Gemm", {"a": A, "b": B, "c": rand(64, (3, 1))}, {"beta": -1.0}),
        single("gemm_c_scalar", "Gemm", {"a": A}, consts={"b": B, "c": np.array(0.25, np.float32)}),
        single("gemm_c_row_2d", "Gemm", {"a": A}, consts={"b": B, "c": rand(65, (1, 5))}),
        single("gemm_c_input", "Gemm", {"a": A, "b": B, "c": rand(66, (3, 5))}, {"alpha": 2.0}),
        single("gemm_beta_zero", "Gemm", {"a": A}, {"beta": 0.0},
               consts={"b": B, "c": rand(67, (5,))}),
    ]
    # MatMul.
    out += [
        single("matmul_2d", "MatMul", {"a": A, "b": B}),
        single("matmul_const_b", "MatMul", {"a": rand(70, (2, 3, 4))}, consts={"b": B}),
        single("matmul_1d_nd", "MatMul", {"a": rand(71, (4,)), "b": rand(72, (2, 4, 5))}),
        single("matmul_nd_1d", "MatMul", {"a": rand(73, (2, 3, 4)), "b": rand(74, (4,))}),
        single("matmul_1d_1d", "MatMul", {"a": rand(75, (4,)), "b": rand(76, (4,))}),
        single("matmul_batch_broadcast", "MatMul", {"a": rand(77, (2, 1, 3, 4)), "b": rand(78, (3, 4, 5))}),
        single("matmul_batch_broadcast_lhs_2d", "MatMul", {"a": A, "b": rand(79, (2, 4, 5))}),
        single("matmul_batch_same", "MatMul", {"a": rand(80, (2, 3, 4)), "b": rand(81, (2, 4, 2))}),
        single("matmul_1d_2d", "MatMul", {"a": rand(82, (4,))}, consts={"b": B}),
    ]
    # Softmax / LogSoftmax: opset 11 flattens from `axis` (default 1), 13 is per axis (default -1).
    s = rand(90, (2, 3, 4), -3, 3)
    for op in ["Softmax", "LogSoftmax"]:
        lo = op.lower()
        out += [
            single(f"{lo}_opset11_default", op, {"x": s}, opset=11),
            single(f"{lo}_opset11_axis0", op, {"x": s}, {"axis": 0}, opset=11),
            single(f"{lo}_opset11_axis_neg1", op, {"x": s}, {"axis": -1}, opset=11),
            single(f"{lo}_opset13_default", op, {"x": s}, opset=13),
            single(f"{lo}_opset13_axis1", op, {"x": s}, {"axis": 1}, opset=13),
            single(f"{lo}_opset13_axis_neg3", op, {"x": s}, {"axis": -3}, opset=13),
            single(f"{lo}_large_values", op, {"x": s * 40}, opset=13),
        ]
    return out

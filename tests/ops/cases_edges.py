"""Edges of the newer ops and of DynamicQuantizeLinear that the other families miss: Tile with a
repeat of 0, CumSum overflow and axes, GatherElements bounds, LayerNorm axes and broadcast
parameters, ArgMax/TopK at rank 1 and on ties, DepthToSpace/SpaceToDepth, reductions to a scalar
and over infinities, unary edge values, logical broadcasts, Lp/InstanceNorm at rank boundaries.

Left out: integer ReduceSumSquare/ReduceL1 past the type's range (edgefuse wraps, onnxruntime
saturates: see the CPU reduce kernel's doc)."""

import numpy as np

from gen import Case, single, rand, ints


def i64(v):
    return np.array(v, dtype=np.int64)


def i32(v):
    return np.array(v, dtype=np.int32)


def cases():
    x = rand(90, (2, 3, 4))
    out = []
    # Tile with a repeat of 0 (an empty output).
    out += [
        single("tile_zero_repeat", "Tile", {"x": x}, consts={"r": i64([1, 0, 2])}),
        single("tile_zero_repeat_first", "Tile", {"x": rand(91, (2, 3))}, consts={"r": i64([0, 3])}),
        single("tile_rank1", "Tile", {"x": rand(92, (3,))}, consts={"r": i64([3])}),
    ]
    # CumSum: i32 overflow wraps (onnxruntime too), int32 axis, exclusive+reverse, negative axis.
    big = np.array([[2**31 - 1, 1, 5], [-(2**31), -1, 3]], np.int32)
    out += [
        single("cumsum_i32_overflow", "CumSum", {"x": big}, consts={"a": i32([1])}),
        single("cumsum_i64_overflow", "CumSum", {"x": big.astype(np.int64) * (2**32)},
               consts={"a": i64([1])}),
        single("cumsum_excl_rev_neg_axis", "CumSum", {"x": x}, {"exclusive": 1, "reverse": 1},
               consts={"a": i64([-3])}),
        single("cumsum_axis0_len1", "CumSum", {"x": rand(93, (1, 4))}, {"exclusive": 1},
               consts={"a": i64([0])}),
    ]
    # GatherElements: negative indices at -n, indices smaller than data off the axis, i32.
    d = rand(94, (3, 4, 2))
    out += [
        single("gatherel_neg_bounds", "GatherElements",
               {"x": d, "i": i64([[[-3, 2]], [[0, -1]]])}, {"axis": 0}),
        single("gatherel_smaller_i32", "GatherElements",
               {"x": d, "i": ints(95, (2, 6, 1), -4, 4, np.int32)}, {"axis": 1}),
        single("gatherel_last_axis", "GatherElements",
               {"x": d, "i": ints(96, (3, 4, 5), -2, 2)}, {"axis": -1}),
    ]
    # LayerNorm: axis 0, axis -rank, large epsilon, rank 1.
    out += [
        single("layernorm_axis0", "LayerNormalization", {"x": x}, {"axis": 0},
               consts={"s": rand(97, (2, 3, 4))}, atol=1e-5, rtol=1e-4),
        single("layernorm_axis_neg_rank", "LayerNormalization", {"x": x}, {"axis": -3,
               "epsilon": 0.5}, consts={"s": rand(98, (2, 3, 4)), "b": rand(99, (2, 3, 4))},
               atol=1e-5, rtol=1e-4),
        single("layernorm_rank1", "LayerNormalization", {"x": rand(100, (7,))}, {},
               consts={"s": rand(101, (7,))}, atol=1e-5, rtol=1e-4),
        single("layernorm_scalar_scale", "LayerNormalization", {"x": x}, {"axis": 1},
               consts={"s": rand(102, (1,)), "b": rand(103, (1, 4))}, atol=1e-5, rtol=1e-4),
    ]
    # ArgMax on rank 1 without keepdims: a scalar.
    out += [
        single("argmax_rank1_scalar", "ArgMax", {"x": rand(104, (5,))}, {"keepdims": 0}),
        single("argmin_u8_last", "ArgMin", {"x": np.array([[3, 1, 1], [0, 0, 2]], np.uint8)},
               {"axis": 1, "select_last_index": 1}),
    ]
    # TopK: k = axis length, smallest, i32; axis 0 of a 1-D input.
    out += [
        single("topk_k_full_smallest", "TopK", {"x": rand(105, (3, 5))}, {"largest": 0},
               consts={"k": i64([5])}, outputs=2),
        single("topk_i32", "TopK", {"x": ints(106, (2, 6), -3, 3, np.int32)},
               consts={"k": i64([4])}, outputs=2),
        single("topk_1d_axis0", "TopK", {"x": rand(107, (6,))}, {"axis": 0},
               consts={"k": i64([6])}, outputs=2),
    ]
    # DepthToSpace / SpaceToDepth.
    out += [
        single("d2s_crd_b1", "DepthToSpace", {"x": rand(108, (1, 3, 2, 2))},
               {"blocksize": 1, "mode": "CRD"}),
        single("d2s_dcr_b3", "DepthToSpace", {"x": rand(109, (2, 18, 2, 3))}, {"blocksize": 3}),
        single("s2d_b2", "SpaceToDepth", {"x": rand(110, (2, 2, 4, 6))}, {"blocksize": 2}),
        single("d2s_nondivisible_refused", "DepthToSpace", {"x": rand(111, (1, 6, 2, 2))},
               {"blocksize": 2}, error="channels"),
    ]
    # Reductions: all axes, keepdims 0 (a scalar); -inf; empty reduced axis.
    minf = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 0.0]], np.float32)
    for op in ("ReduceL1", "ReduceSumSquare", "ReduceLogSumExp"):
        low = op[6:].lower()
        out += [
            single(f"{low}_scalar", op, {"x": x}, {"keepdims": 0}, opset=18),
            single(f"{low}_keepdims_axes_input", op, {"x": x}, {"keepdims": 1},
                   consts={"a": i64([0, 2])}, opset=18),
        ]
    out.append(single("logsumexp_inf", "ReduceLogSumExp", {"x": minf}, {"axes": [1]},
                      opset=13))
    # L2 and LogSumExp take f32 only.
    out.append(single("logsumexp_i64_refused", "ReduceLogSumExp", {"x": i64([[1, 2], [3, 4]])},
                      {"axes": [1]}, opset=13, error="ReduceLogSumExp does not take i64"))
    out.append(single("l2_i32_refused", "ReduceL2", {"x": i32([[1, 2], [3, 4]])},
                      {"axes": [1]}, opset=13, error="ReduceL2 does not take i32"))
    # Unary edge values.
    e = np.array([-0.0, 0.0, -1e30, 1e30, np.nan, -2.5, 3.0], np.float32)
    out += [
        single("sign_edges", "Sign", {"x": e}),
        single("softsign_edges", "Softsign", {"x": e}),
        single("selu_edges", "Selu", {"x": e}),
        single("celu_small_alpha", "Celu", {"x": e}, {"alpha": 0.1}),
        single("thresholdedrelu_neg_alpha", "ThresholdedRelu", {"x": e}, {"alpha": -1.0}),
        single("sign_i32_min", "Sign", {"x": i32([-(2**31), 0, 7])}),
    ]
    # DynamicQuantizeLinear: all negative, all positive, a wide range.
    for n, v in (("neg", rand(112, (2, 5), -3, -1)), ("pos", rand(113, (7,), 1, 4)),
                 ("wide", np.array([-1e6, 0.001, 5e5, 3.0], np.float32))):
        out.append(single(f"dql_{n}", "DynamicQuantizeLinear", {"x": v}, outputs=3, opset=11))
    # Logical ops broadcast to a higher rank; PRelu with a slope of the same rank.
    a = np.array([[True, False, True]])
    b = np.array([[[True], [False]]])
    out += [
        single("and_rank3", "And", {"a": a, "b": b}),
        single("xor_scalar", "Xor", {"a": a, "b": np.array(True)}),
        single("prelu_slope_rank_lower", "PRelu", {"x": x}, consts={"s": rand(114, (3, 1))}),
    ]
    # LpNorm / InstanceNorm at rank boundaries.
    out += [
        single("lpnorm_rank1", "LpNormalization", {"x": rand(115, (5,))}, {"axis": 0, "p": 1}),
        single("instancenorm_5d", "InstanceNormalization", {"x": rand(116, (2, 3, 2, 2, 3))},
               consts={"s": rand(117, (3,)), "b": rand(118, (3,))}, atol=1e-5, rtol=1e-4),
        single("instancenorm_plane1", "InstanceNormalization", {"x": rand(119, (2, 3, 1))},
               consts={"s": rand(117, (3,)), "b": rand(118, (3,))}, atol=1e-5, rtol=1e-4),
    ]
    # More: indices longer than the data along the axis; TopK over ±0 ties; infinities.
    out += [
        single("gatherel_longer_axis", "GatherElements",
               {"x": rand(120, (2, 3)), "i": ints(121, (2, 5), -3, 3)}, {"axis": 1}),
        single("topk_signed_zero_ties", "TopK",
               {"x": np.array([[0.0, -0.0, 1.0, -0.0, 0.0]], np.float32)},
               consts={"k": i64([4])}, outputs=2),
        single("softsign_inf", "Softsign", {"x": np.array([np.inf, -np.inf, 1.0], np.float32)}),
        single("cumsum_i64_reverse", "CumSum", {"x": ints(122, (3, 4), -9, 9)}, {"reverse": 1},
               consts={"a": i64([1])}),
    ]
    return out

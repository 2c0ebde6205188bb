"""Indexing and rearranging: ArgMax/ArgMin, TopK, GatherElements, CumSum, Tile, DepthToSpace,
SpaceToDepth."""

import numpy as np

from gen import Case, single, rand, ints


def i64(v):
    return np.array(v, dtype=np.int64)


def cases():
    x = rand(40, (2, 3, 4))
    ties = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [5, -1, 5, -1]], np.float32)
    out = []
    for op in ("ArgMax", "ArgMin"):
        low = op.lower()
        out += [
            single(f"{low}_axis1", op, {"x": x}, {"axis": 1}),
            single(f"{low}_negative_axis_no_keepdims", op, {"x": x}, {"axis": -1, "keepdims": 0}),
            single(f"{low}_default_axis", op, {"x": x}),
            single(f"{low}_ties_first", op, {"x": ties}, {"axis": 1}),
            single(f"{low}_ties_last", op, {"x": ties}, {"axis": 1, "select_last_index": 1}),
            single(f"{low}_ties_last_axis0", op, {"x": ties}, {"axis": 0, "keepdims": 0,
                                                               "select_last_index": 1}),
            single(f"{low}_int64", op, {"x": ints(41, (3, 5), -4, 4)}, {"axis": 1}),
            single(f"{low}_int32", op, {"x": ints(42, (4, 3), -4, 4, np.int32)}, {"axis": 0}),
        ]
    # NaN never wins after the first element (onnxruntime's comparisons).
    nan = np.array([[1, np.nan, 3, 2], [np.nan, 1, 1, np.nan], [3, 1, np.nan, -1]], np.float32)
    out += [
        single("argmax_nan", "ArgMax", {"x": nan}, {"axis": 1}),
        single("argmin_nan_last", "ArgMin", {"x": nan}, {"axis": 1, "select_last_index": 1}),
        # NaN counts as the largest value.
        single("topk_nan_largest", "TopK", {"x": nan}, consts={"k": i64([2])}, outputs=2),
        single("topk_nan_smallest", "TopK", {"x": nan}, {"largest": 0}, consts={"k": i64([3])},
               outputs=2),
    ]
    segmentation = rand(43, (1, 5, 3, 4))
    out.append(single("argmax_segmentation_classes", "ArgMax", {"x": segmentation},
                      {"axis": 1, "keepdims": 0}))
    topk_ties = np.array([[1, 3, 3, 0, 3, -2], [4, 4, 4, 4, 4, 4]], np.float32)
    out += [
        single("topk_largest_last_axis", "TopK", {"x": x}, consts={"k": i64([2])}, outputs=2),
        single("topk_smallest_axis1", "TopK", {"x": x}, {"axis": 1, "largest": 0},
               consts={"k": i64([2])}, outputs=2),
        single("topk_ties_lower_index_first", "TopK", {"x": topk_ties},
               consts={"k": i64([4])}, outputs=2),
        single("topk_ties_smallest", "TopK", {"x": topk_ties}, {"largest": 0},
               consts={"k": i64([3])}, outputs=2),
        single("topk_all", "TopK", {"x": x}, {"axis": -2}, consts={"k": i64([3])}, outputs=2),
        single("topk_k_zero", "TopK", {"x": x}, consts={"k": i64([0])}, outputs=2),
        single("topk_unsorted_k1", "TopK", {"x": x}, {"axis": 0, "sorted": 0},
               consts={"k": i64([1])}, outputs=2),
        single("topk_int64", "TopK", {"x": ints(44, (3, 6), -3, 3)}, consts={"k": i64([3])},
               outputs=2),
        single("topk_runtime_k_refused", "TopK", {"x": x, "k": i64([2])}, outputs=2,
               error="constant"),
    ]
    data = rand(45, (3, 4, 2))
    out += [
        single("gatherelements_axis0", "GatherElements", {"x": data},
               {"axis": 0}, consts={"i": ints(46, (2, 4, 2), -3, 3)}),
        single("gatherelements_axis1_negative", "GatherElements", {"x": data},
               {"axis": -2}, consts={"i": ints(47, (3, 5, 2), -4, 4)}),
        single("gatherelements_axis2_fed_int32", "GatherElements",
               {"x": data, "i": ints(48, (3, 2, 3), 0, 2, np.int32)}, {"axis": 2}),
        single("gatherelements_int64_data", "GatherElements",
               {"x": ints(49, (2, 3), -9, 9)}, {"axis": 1},
               consts={"i": i64([[2, 0], [1, 1]])}),
    ]
    seq = rand(50, (2, 5, 3))
    for excl in (0, 1):
        for rev in (0, 1):
            out.append(single(f"cumsum_axis1_excl{excl}_rev{rev}", "CumSum", {"x": seq},
                              {"exclusive": excl, "reverse": rev}, consts={"a": i64(1)}))
    out += [
        single("cumsum_negative_axis_int64", "CumSum", {"x": ints(51, (3, 4), -5, 5)},
               consts={"a": i64([-1])}),
        single("cumsum_axis0_int32", "CumSum", {"x": ints(52, (4, 2), -5, 5, np.int32)},
               {"reverse": 1}, consts={"a": np.array(0, np.int32)}),
    ]
    img = rand(53, (1, 8, 2, 3))
    out += [
        single("tile_2d", "Tile", {"x": rand(54, (2, 3))}, consts={"r": i64([2, 3])}),
        single("tile_some_axes", "Tile", {"x": x}, consts={"r": i64([1, 2, 1])}),
        single("tile_ones", "Tile", {"x": x}, consts={"r": i64([1, 1, 1])}),
        single("tile_zero", "Tile", {"x": x}, consts={"r": i64([1, 0, 2])}),
        single("tile_int64_4d", "Tile", {"x": ints(55, (1, 2, 1, 3), 0, 9)},
               consts={"r": i64([2, 1, 3, 2])}),
        single("depthtospace_dcr", "DepthToSpace", {"x": img}, {"blocksize": 2}),
        single("depthtospace_crd", "DepthToSpace", {"x": img}, {"blocksize": 2, "mode": "CRD"}),
        single("depthtospace_batch", "DepthToSpace", {"x": rand(56, (2, 9, 2, 2))},
               {"blocksize": 3}),
        single("spacetodepth", "SpaceToDepth", {"x": rand(57, (2, 3, 4, 6))}, {"blocksize": 2}),
        single("depthtospace_roundtrip", "SpaceToDepth", {"x": img}, {"blocksize": 1}),
    ]
    return out

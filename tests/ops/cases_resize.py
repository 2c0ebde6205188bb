"""Resize: nearest with every nearest_mode, linear, each coordinate_transformation_mode, scales
and sizes, up and down, opset 11 (roi required) / 13 / 18 (axes); cubic with cubic_coeff_a and
exclude_outside; antialias and tf_crop_and_resize as refusals; Upsample (deprecated before
opset 11) refused with its opset."""

import numpy as np

from gen import single, rand

F32 = np.float32


def resize(name, x, attrs, scales=None, sizes=None, opset=13, **kw):
    consts = {"roi": np.array([], F32)}
    order = ["x", "roi" if opset < 13 else None]
    if opset < 13:
        consts = {"roi": np.array([], F32)}
    else:
        consts = {}
    if scales is not None:
        consts["s"] = np.array(scales, F32)
        order.append("s")
    else:
        if opset < 13:
            consts["s"] = np.array([], F32)
            order.append("s")
        else:
            order.append(None)
        consts["z"] = np.array(sizes, np.int64)
        order.append("z")
    return single(name, "Resize", {"x": x}, attrs, consts=consts, order=order, opset=opset, **kw)


def cases():
    x = rand(1, (1, 2, 4, 5), -2, 2)
    out = []
    coords = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
    shapes = [("up2", [1, 1, 2, 2], None), ("up_frac", [1, 1, 1.7, 2.4], None),
              ("down", [1, 1, 0.5, 0.6], None), ("sizes", None, [1, 2, 7, 3]),
              ("sizes_to_one", None, [1, 2, 1, 9])]
    for coord in coords + ["tf_half_pixel_for_nn"]:
        for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
            for sname, sc, sz in shapes:
                if coord == "tf_half_pixel_for_nn" and sname == "sizes_to_one":
                    continue
                out.append(resize(f"resize_nearest_{coord}_{nm}_{sname}", x,
                                  {"mode": "nearest", "coordinate_transformation_mode": coord,
                                   "nearest_mode": nm}, sc, sz))
    for coord in coords:
        for sname, sc, sz in shapes:
            out.append(resize(f"resize_linear_{coord}_{sname}", x,
                              {"mode": "linear", "coordinate_transformation_mode": coord}, sc, sz))
    # Cubic (onnxruntime: 2-D, or 4-D with N and C unscaled).
    for coord in coords:
        for sname, sc, sz in shapes:
            for ex in [0, 1]:
                for a in [-0.75, -0.5]:
                    if (ex, a) == (1, -0.75) and sname != "up_frac":
                        continue
                    tag = f"_excl{ex}_a{-a}".replace(".", "")
                    out.append(resize(f"resize_cubic_{coord}_{sname}{tag}", x,
                                      {"mode": "cubic", "coordinate_transformation_mode": coord,
                                       "cubic_coeff_a": a, "exclude_outside": ex}, sc, sz))
    out += [
        resize("resize_cubic_default_attrs", x, {"mode": "cubic"}, [1, 1, 2, 2]),
        resize("resize_cubic_2d_input", rand(4, (5, 6)), {"mode": "cubic"}, [1.6, 0.7]),
        resize("resize_cubic_one_axis", x, {"mode": "cubic"}, [1, 1, 1, 2.5]),
    ]
    # Opset 19's half_pixel_symmetric (the fractional scales round the output length).
    for mode in ["nearest", "linear", "cubic"]:
        for sname, sc, sz in shapes[:4] + [("frac_odd", [1, 1, 1.3, 0.7], None)]:
            out.append(resize(f"resize_{mode}_half_pixel_symmetric_{sname}", x,
                              {"mode": mode, "coordinate_transformation_mode": "half_pixel_symmetric"},
                              sc, sz, opset=19))
    for sname, sc, sz in shapes[:3]:
        out.append(resize(f"resize_linear_tf_half_pixel_for_nn_{sname}", x,
                          {"mode": "linear", "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
                          sc, sz))
    out += [
        resize("resize_nearest_default_attrs", x, {}, [1, 1, 2, 3]),
        resize("resize_linear_default_coord", x, {"mode": "linear"}, [1, 1, 1.5, 2]),
        resize("resize_opset11_roi_scales", x, {"mode": "nearest"}, [1, 1, 2, 2], opset=11),
        resize("resize_opset11_sizes", x, {"mode": "linear", "coordinate_transformation_mode":
                                          "align_corners"}, sizes=[1, 2, 8, 10], opset=11),
        resize("resize_opset18_axes_scales", x, {"mode": "linear", "axes": [2, 3]}, [2.0, 1.5],
               opset=18),
        resize("resize_opset18_axes_sizes_negative", x, {"mode": "nearest", "axes": [-1]}, sizes=[9],
               opset=18),
        resize("resize_3d_linear", rand(2, (2, 3, 6)), {"mode": "linear"}, [1, 1, 1.5]),
        resize("resize_nearest_channels_too", x, {"mode": "nearest"}, [1, 2, 2, 1]),
        resize("resize_linear_2d_input", rand(3, (4, 5)), {"mode": "linear"}, [2, 0.8]),
        resize("resize_linear_antialias", x, {"mode": "linear", "antialias": 1}, [1, 1, 0.5, 0.5],
               opset=18, error="antialias"),
        resize("resize_tf_crop_and_resize", x, {"mode": "linear",
                                                "coordinate_transformation_mode": "tf_crop_and_resize"},
               [1, 1, 2, 2], error="tf_crop_and_resize"),
        resize("resize_keep_aspect_ratio", x, {"mode": "nearest", "axes": [2, 3],
                                               "keep_aspect_ratio_policy": "not_larger"},
               sizes=[8, 8], opset=18, error="keep_aspect_ratio_policy"),
        single("upsample_opset9", "Upsample", {"x": x}, {"mode": "nearest"},
               consts={"s": np.array([1, 1, 2, 2], F32)}, opset=9, error="opset 9"),
    ]
    return out

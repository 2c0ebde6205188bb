"""Element-wise ops: Sin, Cos, Sign, Selu, Celu, ThresholdedRelu, Softsign, PRelu, And, Or, Xor."""

import numpy as np

from gen import Case, single, rand, ints


def cases():
    x = rand(60, (2, 3, 4), -4, 4)
    edges = np.array([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 100.0, -100.0, 0.5, -0.5,
                      np.inf, -np.inf], np.float32)
    signs = np.array([0.0, -0.0, 2.5, -2.5, 1e-38, -1e-38, np.inf, -np.inf, np.nan], np.float32)
    b = lambda seed, shape: np.random.default_rng(seed).integers(0, 2, size=shape).astype(bool)
    out = [
        single("sin", "Sin", {"x": x}),
        single("cos", "Cos", {"x": x}),
        single("sin_cos_large", "Sin", {"x": np.array([0, 3.1415927, 100, -1000], np.float32)},
               atol=1e-5),
        single("sign", "Sign", {"x": signs}),
        single("sign_int64", "Sign", {"x": np.array([0, -3, 7, -1], np.int64)}),
        single("sign_int32", "Sign", {"x": np.array([0, -3, 7, 2**31 - 1], np.int32)}),
        single("selu_default", "Selu", {"x": x}),
        single("selu_attrs", "Selu", {"x": edges}, {"alpha": 2.0, "gamma": 0.5}),
        single("celu_default", "Celu", {"x": x}),
        single("celu_alpha", "Celu", {"x": edges}, {"alpha": 0.3}),
        single("thresholdedrelu_default", "ThresholdedRelu", {"x": x}),
        single("thresholdedrelu_alpha", "ThresholdedRelu",
               {"x": np.array([-1, 0, 0.5, 0.4999, 0.5001, 3], np.float32)}, {"alpha": 0.5}),
        single("softsign", "Softsign", {"x": np.concatenate([edges, x.ravel()])}),
        # PRelu: per-channel slopes as PyTorch exports them, a full-shape slope, a scalar one, a
        # slope along the last axis, and one fed at run time.
        single("prelu_per_channel", "PRelu", {"x": rand(61, (2, 3, 4, 5))},
               consts={"s": rand(62, (3, 1, 1), 0, 0.5)}),
        single("prelu_full_shape", "PRelu", {"x": x}, consts={"s": rand(63, (2, 3, 4))}),
        single("prelu_scalar", "PRelu", {"x": x}, consts={"s": np.array([0.25], np.float32)}),
        single("prelu_last_axis", "PRelu", {"x": x}, consts={"s": rand(64, (4,))}),
        single("prelu_fed_slope", "PRelu", {"x": edges, "s": rand(65, (12,))}),
        single("prelu_slope_too_big_refused", "PRelu", {"x": rand(66, (3, 1))},
               consts={"s": rand(67, (3, 4))}, error="PRelu"),
        single("and", "And", {"a": b(68, (2, 3, 4)), "b": b(69, (2, 3, 4))}),
        single("or_broadcast", "Or", {"a": b(70, (2, 3, 4)), "b": b(71, (3, 1))}),
        single("xor_broadcast", "Xor", {"a": b(72, (4,)), "b": b(73, (2, 3, 4))}),
        single("xor_same", "Xor", {"a": b(74, (5,)), "b": b(74, (5,))}),
    ]
    return out

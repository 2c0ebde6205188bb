#!/usr/bin/env python3
"""Quantizes reference models to ONNX QDQ with onnxruntime's own static quantizer (u8
activations per tensor, i8 symmetric per-channel weights, int32 biases), an independent
producer of the pattern edgefuse's int8 rules fold. Used to measure int8 latency and agreement.

    python3 scripts/quant/ort_qdq.py OUT_DIR
writes OUT_DIR/{seed_cnn_mnist,efficientnet_lite0}_ortqdq.onnx and OUT_DIR/*_input.npy.
"""
import gzip
import os
import sys

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared")


def mnist(n):
    with gzip.open(os.path.join(SHARED, "data", "mnist", "test-images-idx3-ubyte.gz")) as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16)
    return (data.reshape(-1, 1, 1, 28, 28)[:n].astype(np.float32) / 255.0)


def images():
    out = []
    d = os.path.join(SHARED, "data", "images")
    for name in sorted(os.listdir(d)):
        img = Image.open(os.path.join(d, name)).convert("RGB")
        w, h = img.size
        s = 256 / min(w, h)
        img = img.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
        w, h = img.size
        l, t = (w - 224) // 2, (h - 224) // 2
        img = img.crop((l, t, l + 224, t + 224))
        x = (np.asarray(img, np.float32).transpose(2, 0, 1) - 127.0) / 128.0
        out.append(x[None])
    return out


class Reader(CalibrationDataReader):
    def __init__(self, name, samples):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for model, name, samples in [("seed_cnn_mnist", "image", list(mnist(64))),
                                 ("efficientnet_lite0", "input", images())]:
        src = os.path.join(SHARED, "models", model + ".onnx")
        dst = os.path.join(out, model + "_ortqdq.onnx")
        quantize_static(src, dst, Reader(name, samples), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
        np.save(os.path.join(out, model + "_input.npy"), samples[0])
        print("wrote", dst)


if __name__ == "__main__":
    main()

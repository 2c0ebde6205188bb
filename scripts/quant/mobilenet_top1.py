#!/usr/bin/env python3
"""Reference top-1 of mobilenet_v2_int8_qdq.onnx on every image in ../shared/data/images.

Each image is converted to RGB and resized to 224x224 (PIL bilinear); MANIFEST.md's
preprocessing, (x-128)/128, is then exact in the model's first QuantizeLinear (scale 1/128,
zero point 128), so the u8 pixels are stored as the fixture and the test rebuilds the f32 input.
onnxruntime (graph optimizations disabled, as the refs were made) gives the top-1 per image.

Writes tests/fixtures/mobilenet_images_u8.npy ([N,3,224,224] u8) and
tests/fixtures/mobilenet_top1.json. Run from the repository root:
    python3 scripts/quant/mobilenet_top1.py
"""
import json
import os

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared")
IMAGES = os.path.join(SHARED, "data", "images")
MODEL = os.path.join(SHARED, "models", "mobilenet_v2_int8_qdq.onnx")


def main():
    names = sorted(os.listdir(IMAGES))
    pixels = []
    for n in names:
        img = Image.open(os.path.join(IMAGES, n)).convert("RGB").resize((224, 224), Image.BILINEAR)
        pixels.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
    pixels = np.stack(pixels)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])
    rows = []
    for n, p in zip(names, pixels):
        x = ((p.astype(np.float32) - 128.0) / 128.0)[None]
        probs = sess.run(None, {"input": x})[0][0]
        order = np.argsort(-probs, kind="stable")
        rows.append({
            "image": n,
            "top1": int(order[0]),
            "p1": float(probs[order[0]]),
            "top2": int(order[1]),
            "p2": float(probs[order[1]]),
        })
        print(n, rows[-1])
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    np.save(os.path.join(fixtures, "mobilenet_images_u8.npy"), pixels)
    with open(os.path.join(fixtures, "mobilenet_top1.json"), "w") as f:
        json.dump({"runtime": "onnxruntime %s CPU, graph optimizations disabled" % ort.__version__,
                   "resize": "PIL bilinear to 224x224, RGB", "images": rows}, f, indent=1)


if __name__ == "__main__":
    main()

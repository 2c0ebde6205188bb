#!/usr/bin/env python3
"""CPU preprocessing, edgefuse beside OpenCV, in the same run: a 1920x1080 YUYV frame (from
../shared/data/images/cat_1080p.jpg) -> resize shorter side to 256 -> centre crop 224 ->
(x - 127) / 128 as f32 NCHW. OpenCV: cvtColor(YUV2RGB_YUYV) + resize(INTER_LINEAR) + crop +
normalise + transpose, cv2.setNumThreads(2). Also checks both give the same tensor (max abs
difference, in 0..1 units). Needs opencv-python-headless, numpy, pillow, and a release build of
the `preprocess_bench` example and of `edgefuse`. Then `edgefuse classify` with EfficientNet-Lite0
(fp32) on a 1080p YUYV raw-frame file of the same frame: frames per second, and top-1 against
`edgefuse run` on the saved model input. Usage: scripts/bench-preprocess.py [ITERS] [ROUNDS] [FRAMES]"""
import json
import os
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
shared = os.environ.get("EDGEFUSE_SHARED", os.path.join(root, "..", "shared"))
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 500
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
frames = int(sys.argv[3]) if len(sys.argv) > 3 else 100
exe = os.path.join(root, "target", "release", "examples", "preprocess_bench")

rgb = np.asarray(Image.open(os.path.join(shared, "data", "images", "cat_1080p.jpg")).convert("RGB"))
h, w, _ = rgb.shape
# Pack YUYV (BT.601 limited range, chroma averaged over each pixel pair) the way the runtime does.
f = rgb.astype(np.float64)
y = 16 + 0.256788 * f[..., 0] + 0.504129 * f[..., 1] + 0.097906 * f[..., 2]
pr = (f[:, 0::2] + f[:, 1::2]) / 2
u = 128 - 0.148223 * pr[..., 0] - 0.290993 * pr[..., 1] + 0.439216 * pr[..., 2]
v = 128 + 0.439216 * pr[..., 0] - 0.367788 * pr[..., 1] - 0.071427 * pr[..., 2]
q = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)
yuyv = np.stack([q(y[:, 0::2]), q(u), q(y[:, 1::2]), q(v)], axis=-1).reshape(h, w, 2)

cv2.setNumThreads(2)
rw, rh = int(256 * w / h), 256
left, top = int(round((rw - 224) / 2.0)), int(round((rh - 224) / 2.0))


def opencv(frame):
    img = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_YUYV)
    img = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR)
    img = img[top:top + 224, left:left + 224]
    x = (img.astype(np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def time_opencv():
    for _ in range(20):
        opencv(yuyv)
    t = []
    for _ in range(iters):
        s = time.perf_counter()
        opencv(yuyv)
        t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t)


def time_edgefuse(threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([exe, str(iters), str(threads)], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


results = {"opencv_2t": [], "edgefuse_2t": [], "edgefuse_1t": []}
for r in range(rounds):
    results["opencv_2t"].append(time_opencv())
    results["edgefuse_2t"].append(time_edgefuse(2)["median_ms"])
    results["edgefuse_1t"].append(time_edgefuse(1)["median_ms"])
ours = time_edgefuse(2)
ref = opencv(yuyv)
summary = {k: statistics.median(v) for k, v in results.items()}
summary["ratio_2t"] = summary["edgefuse_2t"] / summary["opencv_2t"]
summary["opencv_checksum"] = float(ref.astype(np.float64).sum())
summary["edgefuse_checksum"] = ours["checksum"]
summary["opencv_version"] = cv2.__version__
summary["rounds"] = results


def classify_bench():
    ef = os.path.join(root, "target", "release", "edgefuse")
    out = os.path.join(root, "target", "bench-classify")
    os.makedirs(out, exist_ok=True)
    clip = os.path.join(out, "cat_1080p.yuyv")
    with open(clip, "wb") as f:
        f.write(yuyv.tobytes())
    efm = os.path.join(out, "effnet.efm")
    subprocess.run([ef, "compile", os.path.join(shared, "models", "efficientnet_lite0.onnx"), "-o", efm,
                    "--preprocess", "efficientnet_lite0", "--labels",
                    os.path.join(shared, "data", "imagenet_labels_1000.txt")], check=True, capture_output=True)
    x = os.path.join(out, "input.npy")
    r = subprocess.run([ef, "classify", efm, "--source", clip + ":1920x1080", "--loop", "--frames", str(frames),
                        "--json", "--top", "1", "--save-input", x], check=True, capture_output=True, text=True)
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    top1 = {l["top"][0]["index"] for l in lines}
    subprocess.run([ef, "run", efm, "--input", "input=" + x, "--output-dir", out], check=True, capture_output=True)
    logits = np.load(os.path.join(out, "logits.npy"))
    return {
        "summary": r.stderr.strip(),
        "frames": len(lines),
        "top1_labels": sorted({l["top"][0]["label"] for l in lines}),
        "top1_equals_run": top1 == {int(logits.argmax())},
        "median_ms": {k: statistics.median(l["timings_ms"][k] for l in lines) for k in ("capture", "preprocess", "infer")},
    }


summary["classify"] = classify_bench()
print(json.dumps(summary, indent=1))

#!/usr/bin/env python3
"""Makes the demo data in examples/demo/ from the reference photographs in ../shared/data/images:
small JPEGs (the image-folder source) and a short recorded raw clip, clip.yuyv (192x144 YUYV,
one frame per photograph, BT.601 limited range as UVC cameras send it). Needs pillow and numpy."""
import os
import sys

import numpy as np
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
shared = os.environ.get("EDGEFUSE_SHARED", os.path.join(root, "..", "shared"))
src = os.path.join(shared, "data", "images")
out = os.path.join(root, "examples", "demo")
os.makedirs(out, exist_ok=True)

IMAGES = ["chelsea.png", "coffee.png", "hot_dog.jpg", "owl.jpg"]
CLIP = ["chelsea.png", "coffee.png", "hot_dog.jpg"]
W, H = 192, 144


def fit(img, w, h):
    """Centre crop to w:h, then resize to w x h."""
    iw, ih = img.size
    s = min(iw / w, ih / h)
    cw, ch = round(w * s), round(h * s)
    left, top = (iw - cw) // 2, (ih - ch) // 2
    return img.crop((left, top, left + cw, top + ch)).resize((w, h), Image.BICUBIC)


def yuyv(rgb):
    """RGB uint8 [H, W, 3] -> YUYV bytes; chroma of each pixel pair from its mean RGB."""
    f = rgb.astype(np.float64)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 0.256788 * r + 0.504129 * g + 0.097906 * b
    pr = (f[:, 0::2] + f[:, 1::2]) / 2
    u = 128 - 0.148223 * pr[..., 0] - 0.290993 * pr[..., 1] + 0.439216 * pr[..., 2]
    v = 128 + 0.439216 * pr[..., 0] - 0.367788 * pr[..., 1] - 0.071427 * pr[..., 2]
    q = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)
    packed = np.stack([q(y[:, 0::2]), q(u), q(y[:, 1::2]), q(v)], axis=-1)
    return packed.tobytes()


for name in IMAGES:
    img = Image.open(os.path.join(src, name)).convert("RGB")
    small = fit(img, 320, 240)
    small.save(os.path.join(out, os.path.splitext(name)[0] + ".jpg"), quality=85)
with open(os.path.join(out, f"clip.yuyv"), "wb") as f:
    for name in CLIP:
        img = Image.open(os.path.join(src, name)).convert("RGB")
        f.write(yuyv(np.asarray(fit(img, W, H))))
print(f"wrote {out}: {len(IMAGES)} JPEGs, clip.yuyv ({len(CLIP)} frames {W}x{H})", file=sys.stderr)

#!/usr/bin/env python3
"""Preprocessed ImageNet-style inputs from ../shared/data/images as .npy batches.

Preprocessing as MANIFEST.md gives it for EfficientNet-Lite0: RGB, resize the short side to 256,
crop 224, (x - MEAN) / STD, NCHW float32. Writes:
  eval.npy   every image in 7 variants: centre crop, its horizontal flip, the 4 corner crops, and
             the whole image squeezed to 224x224 (the "images and their flips and crops" set);
  calib.npy  N calibration inputs: seeded random crops (short side 224..320) and flips.
Usage: images_to_npy.py IMAGES_DIR OUT_DIR [--mean 127 --std 128 --calib 64]
"""
import argparse
import os
import random

import numpy as np
from PIL import Image


def load(path):
    return Image.open(path).convert("RGB")


def short_side(img, s):
    w, h = img.size
    k = s / min(w, h)
    return img.resize((max(s, round(w * k)), max(s, round(h * k))), Image.BILINEAR)


def crop(img, x, y, size=224):
    return img.crop((x, y, x + size, y + size))


def to_array(img, mean, std):
    a = (np.asarray(img, dtype=np.float32) - mean) / std
    return a.transpose(2, 0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--mean", type=float, default=127.0)
    ap.add_argument("--std", type=float, default=128.0)
    ap.add_argument("--calib", type=int, default=64)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    files = sorted(
        f for f in os.listdir(a.images)
        if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp"))
    )
    evals, names = [], []
    for f in files:
        img = short_side(load(os.path.join(a.images, f)), 256)
        w, h = img.size
        cx, cy = (w - 224) // 2, (h - 224) // 2
        centre = crop(img, cx, cy)
        variants = {
            "centre": centre,
            "flip": centre.transpose(Image.FLIP_LEFT_RIGHT),
            "top-left": crop(img, 0, 0),
            "top-right": crop(img, w - 224, 0),
            "bottom-left": crop(img, 0, h - 224),
            "bottom-right": crop(img, w - 224, h - 224),
            "squeezed": load(os.path.join(a.images, f)).resize((224, 224), Image.BILINEAR),
        }
        for k, v in variants.items():
            evals.append(to_array(v, a.mean, a.std))
            names.append(f"{f}:{k}")
    np.save(os.path.join(a.out, "eval.npy"), np.stack(evals))
    with open(os.path.join(a.out, "eval.txt"), "w") as fh:
        fh.write("\n".join(names) + "\n")
    rng = random.Random(7)
    calib = []
    for i in range(a.calib):
        f = files[i % len(files)]
        img = short_side(load(os.path.join(a.images, f)), rng.randint(224, 320))
        w, h = img.size
        c = crop(img, rng.randint(0, w - 224), rng.randint(0, h - 224))
        if rng.random() < 0.5:
            c = c.transpose(Image.FLIP_LEFT_RIGHT)
        calib.append(to_array(c, a.mean, a.std))
    np.save(os.path.join(a.out, "calib.npy"), np.stack(calib))
    print(f"{len(evals)} eval inputs, {len(calib)} calibration inputs in {a.out}")


if __name__ == "__main__":
    main()

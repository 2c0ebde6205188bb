#!/usr/bin/env python3
"""PyTorch beside `edgefuse bench --backend cuda`: eager and CUDA-graph replay, batch 1, medians.

The GPU machine has torch but no onnx2torch, torchvision or network, so the reference models are
written out here by hand with the same layer shapes (weights random: timing does not depend on
them; BatchNorm folded into conv bias, as edgefuse's compiler does). silero_vad and ddddocr_crnn
have no hand-written equivalent and are reported as skipped.

Prints one JSON object per (model, precision, mode) line.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class SeedCnn(nn.Module):
    """Keras MNIST CNN: Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10-Softmax."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))

    def forward(self, x):
        return self.f(x)


class SeedLstm(nn.Module):
    """Embedding(1000,128) -> LSTM(128) -> Dense(1000) softmax on the last step."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(1000, 128)
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.out = nn.Linear(128, 1000)

    def forward(self, tokens):
        y, _ = self.lstm(self.emb(tokens))
        return torch.softmax(self.out(y[:, -1]), dim=1)


def conv(cin, cout, k, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=True)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, k, s, expand):
        super().__init__()
        mid = cin * expand
        layers = [] if expand == 1 else [conv(cin, mid, 1)]
        layers += [conv(mid, mid, k, s, groups=mid), conv(mid, cout, 1, act=False)]
        self.f = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.f(x)
        return x + y if self.residual else y


def blocks(cin, table):
    layers = []
    for t, c, n, s, k in table:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, k, s if i == 0 else 1, t))
            cin = c
    return nn.Sequential(*layers), cin


class MobileNetV2(nn.Module):
    """MobileNetV2 1.0/224, 1001 classes (the TFLite model's head), ReLU6, BN folded."""

    def __init__(self):
        super().__init__()
        body, c = blocks(32, [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3),
                              (6, 96, 3, 1, 3), (6, 160, 3, 2, 3), (6, 320, 1, 1, 3)])
        self.f = nn.Sequential(conv(3, 32, 3, 2), body, conv(c, 1280, 1), nn.AdaptiveAvgPool2d(1),
                               nn.Conv2d(1280, 1001, 1), nn.Flatten(), nn.Softmax(dim=1))

    def forward(self, x):
        return self.f(x)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: MBConv without squeeze-excite, ReLU6, fixed stem and head."""

    def __init__(self):
        super().__init__()
        body, c = blocks(32, [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
                              (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)])
        self.f = nn.Sequential(conv(3, 32, 3, 2), body, conv(c, 1280, 1), nn.AdaptiveAvgPool2d(1),
                               nn.Flatten(), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.f(x)


MODELS = {
    "seed_cnn_mnist": (SeedCnn, lambda: torch.rand(1, 1, 28, 28)),
    "seed_cnn_fashion": (SeedCnn, lambda: torch.rand(1, 1, 28, 28)),
    "seed_lstm_textgen": (SeedLstm, lambda: torch.randint(0, 1000, (1, 20))),
    "efficientnet_lite0": (EfficientNetLite0, lambda: torch.rand(1, 3, 224, 224)),
    "mobilenet_v2_int8_qdq": (MobileNetV2, lambda: torch.rand(1, 3, 224, 224)),
}
SKIPPED = {
    "silero_vad_16k_sequence": "no hand-written PyTorch equivalent (STFT conv + LSTM with state)",
    "ddddocr_crnn": "no hand-written PyTorch equivalent (21-conv CRNN)",
}


def median_ms(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench(name, precision, iters):
    make, make_input = MODELS[name]
    model = make().cuda().eval()
    x = make_input().cuda()
    if precision == "fp16":
        model = model.half()
        if x.is_floating_point():
            x = x.half()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with torch.inference_mode():
        eager = median_ms(lambda: model(x), iters, 50)
        static_x = x.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(5):
                model(static_x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            model(static_x)
        graph = median_ms(g.replay, iters, 50)
    return eager, graph


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--precisions", default="fp32,fp16")
    a = p.parse_args()
    dev = torch.cuda.get_device_name(0)
    for name in list(MODELS) + list(SKIPPED):
        for precision in a.precisions.split(","):
            if name in SKIPPED:
                print(json.dumps({"model": name, "precision": precision, "skipped": SKIPPED[name]}))
                continue
            try:
                eager, graph = bench(name, precision, a.iters)
                print(json.dumps({"model": name, "precision": precision, "device": dev,
                                  "torch": torch.__version__, "eager_ms": eager, "graph_ms": graph}))
            except Exception as e:  # report and go on with the next model
                print(json.dumps({"model": name, "precision": precision, "error": str(e)[:200]}))


if __name__ == "__main__":
    main()

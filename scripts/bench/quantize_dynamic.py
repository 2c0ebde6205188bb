"""onnxruntime's `quantize_dynamic` models through edgefuse and onnxruntime: file sizes and
CPU latency (median of several runs), 1 and 2 threads.

Models: an MLP of 1024-wide layers (512 → 1024 → 1024 → 1024 → 512, bias and ReLU; what a
PyTorch MLP exports as MatMul + Add) at batch 1 and 32, quantized with the defaults (u8
activations, i8 weights per tensor) and with `per_channel=True`; and the seed text LSTM
(`../shared/models/seed_lstm_textgen.onnx`: its LSTM becomes DynamicQuantizeLSTM), and the seed
CNN and EfficientNet-Lite0 at the references' batch (their Convs become ConvInteger), when
present.

Usage:
    python3 scripts/bench/quantize_dynamic.py OUT_DIR EDGEFUSE [EDGEFUSE_BEFORE]

EDGEFUSE_BEFORE, a binary built from an earlier commit, adds its file size and latency as the
"before" columns. Every latency is the median of `ROUNDS` runs of `edgefuse bench` (100 timed
iterations after 200 ms of warm-up) or of onnxruntime (`ort_one.py`, the CPU table's timer: the
same, in one fresh process each).
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ROUNDS = 5
ITERS = 100



def mlp(path, widths=(1024, 1024, 1024, 512), k=512, seed=0):
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], [], "x"
    for i, n in enumerate(widths):
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        b = (rng.standard_normal(n) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(widths) - 1
        nodes += [helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], ["y" if last else f"a{i}"])]
        if not last:
            nodes.append(helper.make_node("Relu", [f"a{i}"], [f"h{i}"]))
        cur, k = f"h{i}", n
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", k])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def quantize(src, dst, per_channel):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def edgefuse_ms(exe, efm, threads):
    runs = []
    for _ in range(ROUNDS):
        out = subprocess.run([exe, "bench", efm, "--backend", "cpu", "--json", "--threads",
                              str(threads), "--iters", str(ITERS)], check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out)["median_ms"])
    return median(runs)


def ort_ms(model, inputs, threads):
    """onnxruntime through the table's own timer, `ort_one.py` (`inputs`: a refs-like folder)."""
    runs = []
    for _ in range(ROUNDS):
        out = subprocess.run([sys.executable, os.path.join(HERE, "ort_one.py"), model, inputs,
                              str(threads), str(ITERS)], check=True, capture_output=True,
                             text=True).stdout
        runs.append(json.loads(out)["median_ms"])
    return median(runs)


def write_inputs(folder, feeds):
    """`feeds` as `ort_one.py` reads them: a `refs.json` naming one `.npy` file per input."""
    os.makedirs(folder, exist_ok=True)
    entries = []
    for i, (name, value) in enumerate(feeds.items()):
        np.save(os.path.join(folder, f"input_{i}.npy"), value)
        entries.append({"name": name, "file": f"input_{i}.npy"})
    with open(os.path.join(folder, "refs.json"), "w") as f:
        json.dump({"inputs": entries}, f)


def compile_efm(exe, onnx_path, efm, shape):
    cmd = [exe, "compile", onnx_path, "-o", efm]
    if shape:
        cmd += ["--input", shape]
    subprocess.run(cmd, check=True, capture_output=True)
    return os.path.getsize(efm)


def main():
    out, exe = sys.argv[1], os.path.abspath(sys.argv[2])
    before = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
    os.makedirs(out, exist_ok=True)
    fp32 = os.path.join(out, "mlp.onnx")
    mlp(fp32)
    models = []
    for name, pc in [("mlp_dynq", False), ("mlp_dynq_per_channel", True)]:
        q = os.path.join(out, f"{name}.onnx")
        quantize(fp32, q, pc)
        for batch in (1, 32):
            x = np.random.default_rng(batch).uniform(-1, 1, (batch, 512)).astype(np.float32)
            models.append((f"{name} b{batch}", q, {"x": x}, f"x={batch}x512"))
    lstm = os.path.join(ROOT, "..", "shared", "models", "seed_lstm_textgen.onnx")
    if os.path.exists(lstm):
        q = os.path.join(out, "seed_lstm_dynq.onnx")
        quantize(lstm, q, False)
        tokens = np.random.default_rng(0).integers(0, 1000, (1, 20)).astype(np.int64)
        name = onnx.load(q).graph.input[0].name
        models.append(("seed_lstm_dynq b1", q, {name: tokens}, None))
    # CNNs: their Convs become ConvInteger (DynamicQuantizeConv here), at the references'
    # batch and inputs.
    for stem in ("seed_cnn_mnist", "efficientnet_lite0"):
        src = os.path.join(ROOT, "..", "shared", "models", f"{stem}.onnx")
        refs = os.path.join(ROOT, "..", "shared", "models", "refs", stem)
        if not os.path.exists(src):
            continue
        q = os.path.join(out, f"{stem}_dynq.onnx")
        quantize(src, q, False)
        meta = json.load(open(os.path.join(refs, "refs.json")))
        feeds = {i["name"]: np.load(os.path.join(refs, i["file"])) for i in meta["inputs"]}
        shape = ",".join(f"{k}={'x'.join(map(str, v.shape))}" for k, v in feeds.items())
        batch = next(iter(feeds.values())).shape[0]
        models.append((f"{stem}_dynq b{batch}", q, feeds, shape))
    rows = []
    for label, q, feeds, shape in models:
        stem = label.replace(" ", "_")
        inputs = os.path.join(out, f"{stem}.inputs")
        write_inputs(inputs, feeds)
        row = {"model": label, "onnx_bytes": os.path.getsize(q)}
        ops = sorted({n.op_type for n in onnx.load(q).graph.node})
        row["onnx_ops"] = ops
        row["after_bytes"] = compile_efm(exe, q, os.path.join(out, f"{stem}.efm"), shape)
        if before:
            row["before_bytes"] = compile_efm(before, q, os.path.join(out, f"{stem}.before.efm"),
                                              shape)
        for t in (1, 2):
            row[f"after_{t}t"] = edgefuse_ms(exe, os.path.join(out, f"{stem}.efm"), t)
            if before:
                row[f"before_{t}t"] = edgefuse_ms(before, os.path.join(out, f"{stem}.before.efm"),
                                                  t)
            row[f"ort_{t}t"] = ort_ms(q, inputs, t)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    mb = lambda b: f"{b / 1e6:.2f}"  # noqa: E731
    print("| model | ONNX MB | .efm MB before | .efm MB after | before 1T / 2T ms | "
          "after 1T / 2T ms | onnxruntime 1T / 2T ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        b = (f"{r['before_1t']:.3f} / {r['before_2t']:.3f}" if before else "–")
        print(f"| {r['model']} | {mb(r['onnx_bytes'])} | "
              f"{mb(r['before_bytes']) if before else '–'} | {mb(r['after_bytes'])} | {b} | "
              f"{r['after_1t']:.3f} / {r['after_2t']:.3f} | "
              f"{r['ort_1t']:.3f} / {r['ort_2t']:.3f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""onnxruntime's `quantize_dynamic` models on the GPU, for scripts/gpu-check.sh.

prepare (here, with onnxruntime): the seed MNIST CNN (its Convs become ConvInteger →
DynamicQuantizeConv, its Gemm DynamicQuantizeMatMul), the seed text LSTM (DynamicQuantizeLSTM →
QLstm, MatMul → DynamicQuantizeMatMul) and EfficientNet-Lite0 are quantized with
`quantize_dynamic` (i8 weights, u8 activations), compiled to .efm at the references' shapes, and
run by onnxruntime on the references' inputs; the .efm files, inputs and onnxruntime's outputs
go to DIR.

check (on the GPU machine, numpy only): each file run with `edgefuse run --backend cuda` and
compared with onnxruntime's outputs: the CNNs with the same top-1 per row and max |diff| ≤
1e-2·max(1, max|ref|) (the GPU's float ops between the int8 layers sum in another order, which
can move a dynamic quantization's rounding by one step); the LSTM within 5e-2, its top-1
reported (on the GPU QLstm runs the float recurrence of its int8 weights, where onnxruntime
also quantizes X and h per step) — then `edgefuse bench --backend cuda --iters 2000` at the
same shapes (3 runs on the emulated GPU, scripts/cuda-emu/fake-gpu.sh). Prints a markdown table;
exits 1 if a model fails.

usage: dynamic_models.py prepare DIR HOST_EDGEFUSE SHARED_MODELS
       dynamic_models.py check DIR EDGEFUSE OUT
"""
import json
import os
import subprocess
import sys

import numpy as np

MODELS = ["seed_cnn_mnist", "seed_lstm_textgen", "efficientnet_lite0"]
# (max |diff| / max(1, |ref|), top-1 required) per model.
BOUNDS = {"seed_lstm_textgen": (5e-2, False)}


def child_env():
    """The environment for the edgefuse runs: scripts/gpu-check.sh runs Python without the CUDA
    library path (it can make Python bind another libpython) and hands it over in
    EDGEFUSE_CHILD_LD_LIBRARY_PATH."""
    env = dict(os.environ)
    if "EDGEFUSE_CHILD_LD_LIBRARY_PATH" in env:
        env["LD_LIBRARY_PATH"] = env.pop("EDGEFUSE_CHILD_LD_LIBRARY_PATH")
    return env


def bench_iters():
    """GPU_CHECK_ITERS (scripts/gpu-check.sh's runs per median), else 2000; on the emulated GPU
    (scripts/cuda-emu/fake-gpu.sh), where a time means nothing, 3 unless that says otherwise."""
    return os.environ.get("GPU_CHECK_ITERS") or ("3" if os.environ.get("EDGEFUSE_FAKE_GPU") else "2000")


def prepare(out, cli, shared):
    os.makedirs(out, exist_ok=True)
    failed = []
    for m in MODELS:
        try:
            prepare_one(out, cli, shared, m)
        except Exception as e:  # one model's failure leaves the others
            print(f"{m}: not prepared: {e}", file=sys.stderr)
            failed.append(m)
    if failed:
        sys.exit(f"not prepared: {', '.join(failed)}")


def prepare_one(out, cli, shared, m):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    refs = json.load(open(os.path.join(shared, "refs", m, "refs.json")))
    q = os.path.join(out, f"{m}.dynq.onnx")
    quantize_dynamic(os.path.join(shared, f"{m}.onnx"), q, weight_type=QuantType.QInt8)
    cmd = [cli, "compile", q, "-o", os.path.join(out, f"{m}.dynq.efm")]
    feeds = {}
    for k, i in enumerate(refs["inputs"]):
        cmd += ["--input", f'{i["name"]}={"x".join(map(str, i["shape"]))}']
        x = np.load(os.path.join(shared, "refs", m, i["file"]))
        feeds[i["name"]] = x
        np.save(os.path.join(out, f"{m}.in{k}.npy"), x)
    subprocess.run(cmd, check=True, capture_output=True)
    s = ort.InferenceSession(q, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    for name, y in zip(names, s.run(None, feeds)):
        np.save(os.path.join(out, f"{m}.ort.{name}.npy"), y)
    json.dump({"inputs": [i["name"] for i in refs["inputs"]], "outputs": names},
              open(os.path.join(out, f"{m}.json"), "w"))
    os.remove(q)
    print(f"{m}: {os.path.getsize(os.path.join(out, f'{m}.dynq.efm')) / 1e6:.2f} MB")


def check(d, exe, out):
    rows, ok_all = [], True
    for m in MODELS:
        efm = os.path.join(d, f"{m}.dynq.efm")
        if not os.path.exists(efm):
            rows.append(f"| {m} | — | — | — | not in the carry |")
            continue
        try:
            row, ok = check_one(d, exe, out, m, efm)
        except Exception as e:  # a missing output file, a bad JSON line: this model's row
            row, ok = f"| {m} | — | — | — | check failed: {e} |", False
        rows.append(row)
        ok_all &= ok
    print("\n### onnxruntime `quantize_dynamic` models on the GPU (int8 dynamic ops)\n")
    print("| model | placement | max \\|diff\\| / max(1, \\|ref\\|) vs onnxruntime | edgefuse ms (median of "
          f"{bench_iters()}) | |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return ok_all


def check_one(d, exe, out, m, efm):
    """This model's table row and whether it passed."""
    meta = json.load(open(os.path.join(d, f"{m}.json")))
    res = os.path.join(out, f"dynq-{m}")
    os.makedirs(res, exist_ok=True)
    cmd = [exe, "run", efm, "--backend", "cuda", "--output-dir", res]
    for k, name in enumerate(meta["inputs"]):
        cmd += ["--input", f"{name}={os.path.join(d, f'{m}.in{k}.npy')}"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    placement = subprocess.run([exe, "inspect", efm, "--backend", "cuda"], capture_output=True, env=child_env(),
                               text=True).stdout
    where = next((l.split(None, 1)[1] for l in placement.splitlines() if l.startswith("placement")), "?")
    if run.returncode != 0:
        return f"| {m} | {where} | — | — | run failed: {run.stderr.strip()[:120]} |", False
    worst, top1 = 0.0, True
    for name in meta["outputs"]:
        want = np.load(os.path.join(d, f"{m}.ort.{name}.npy")).astype(np.float64)
        got = np.load(os.path.join(res, f"{name}.npy")).astype(np.float64)
        worst = max(worst, float(np.abs(got - want).max()) / max(1.0, float(np.abs(want).max())))
        if want.ndim >= 2:
            top1 &= bool((got.reshape(-1, want.shape[-1]).argmax(1)
                          == want.reshape(-1, want.shape[-1]).argmax(1)).all())
    bound, need_top1 = BOUNDS.get(m, (1e-2, True))
    ok = worst <= bound and (top1 or not need_top1)
    bench = subprocess.run([exe, "bench", efm, "--backend", "cuda", "--iters", bench_iters(), "--json"], env=child_env(),
                           capture_output=True, text=True)
    try:
        ms = f'{json.loads(bench.stdout).get("median_ms", float("nan")):.3f}'
    except ValueError:
        ms = "bench failed"
    same = "same top-1" if top1 else "top-1 differs"
    return f"| {m} | {where} | {worst:.2e} (≤ {bound:g}), {same} | {ms} | {'ok' if ok else 'FAIL'} |", ok


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    else:
        sys.exit(__doc__)

#!/usr/bin/env python3
"""Merges `edgefuse bench --json` lines and torch_bench.py lines into one markdown table.

usage: table.py BENCH.jsonl TORCH.jsonl
BENCH.jsonl lines carry an extra "case" {"model", "precision"} added by gpu-check.sh.
"""
import json
import sys


def load(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


# Issue 8's targets on the H100 (batch 1, median ms), by (model, precision); None: any precision.
TARGETS = {
    ("seed_cnn_mnist", None): 0.04,
    ("seed_cnn_fashion", None): 0.04,
    ("seed_lstm_textgen", None): 0.06,
    ("efficientnet_lite0", "fp16"): 0.35,
}


def target(model, precision):
    return TARGETS.get((model, precision), TARGETS.get((model, None)))


def ran_as(on):
    """The precision the CUDA session computed in, from `describe()` ("cuda on X (sm_90), fp16, ...")."""
    parts = [p.strip() for p in (on or "").split(",")]
    return next((p for p in parts if p in ("fp16", "fp32")), "—")


def main():
    ef = {(b["case"]["model"], b["case"]["precision"]): b for b in load(sys.argv[1])}
    pt = {(t["model"], t["precision"]): t for t in load(sys.argv[2])}
    keys = sorted(set(ef) | set(pt))
    print("| model | file | ran as | edgefuse median ms | p99 ms | load→first ms | target ms | "
          "PyTorch eager ms | PyTorch CUDA graph ms | edgefuse vs graph |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in keys:
        e, t = ef.get(k, {}), pt.get(k, {})
        med = e.get("median_ms")
        graph = t.get("graph_ms")
        cell = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "—"
        note = " ".join(str(t.get("skipped") or t.get("error") or e.get("error") or "").split())
        ratio = f"{graph / med:.2f}× faster" if med and graph and med < graph else (
            f"{med / graph:.2f}× slower" if med and graph else note)
        goal = target(*k)
        met = "" if goal is None or not med else (" ✓" if med <= goal else " ✗")
        goal = f"≤ {goal}{met}" if goal is not None else "—"
        print(f"| {k[0]} | {k[1]} | {ran_as(e.get('on'))} | {cell(med)} | {cell(e.get('p99_ms'))} | "
              f"{cell(e.get('load_to_first_ms'))} | {goal} | {cell(t.get('eager_ms'))} | {cell(graph)} | {ratio} |")
    devices = {t.get("device") for t in pt.values() if t.get("device")}
    ons = {e.get("on") for e in ef.values() if e.get("on")}
    print()
    print(f"PyTorch device: {', '.join(sorted(devices)) or 'n/a'}; edgefuse: {'; '.join(sorted(ons))[:300]}")


if __name__ == "__main__":
    main()

"""Runs edgefuse, onnxruntime and tract side by side on the reference models and writes
BENCHMARKS.md (the section between the BENCH markers; other sections are kept).

Each round runs every runtime once per model, in alternating order, each in a fresh process;
the table reports the median over rounds of each runtime's per-round median latency.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("EDGEFUSE_SHARED", os.path.join(ROOT, "..", "shared"))
MODELS = ["seed_cnn_mnist", "seed_cnn_fashion", "seed_lstm_textgen", "efficientnet_lite0",
          "mobilenet_v2_int8_qdq", "silero_vad_16k_sequence", "ddddocr_crnn"]
EDGEFUSE = os.path.join(ROOT, "target", "release", "edgefuse")
OUT = os.path.join(ROOT, "target", "bench")


def run_measured(cmd):
    """Runs cmd; returns its stdout. Fails with its stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p.stdout


def peak_rss_of(cmd):
    """Peak RSS (bytes) of a child process, measured with wait4."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {status}")
    return ru.ru_maxrss * 1024


def refs(model):
    d = os.path.join(SHARED, "models", "refs", model)
    return d, json.load(open(os.path.join(d, "refs.json")))


def compile_efm(model):
    d, r = refs(model)
    out = os.path.join(OUT, f"{model}.efm")
    cmd = [EDGEFUSE, "compile", os.path.join(SHARED, "models", f"{model}.onnx"), "-o", out]
    for i in r["inputs"]:
        cmd += ["--input", f"{i['name']}=" + "x".join(map(str, i["shape"]))]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def bench_edgefuse(model, efm, threads, iters):
    j = json.loads(run_measured([EDGEFUSE, "bench", efm, "--threads", str(threads), "--iters", str(iters), "--json"]))
    return {"median_ms": j["median_ms"], "p90_ms": j["p90_ms"], "load_to_first_ms": j["load_to_first_ms"],
            "peak_rss_bytes": j["peak_rss_bytes"]}


def bench_ort(model, threads, iters):
    d, _ = refs(model)
    script = os.path.join(ROOT, "scripts", "bench", "ort_one.py")
    out = run_measured([sys.executable, script, os.path.join(SHARED, "models", f"{model}.onnx"), d, str(threads), str(iters)])
    return json.loads(out.strip().splitlines()[-1])


def tract_args(model):
    d, r = refs(model)
    args = ["tract", os.path.join(SHARED, "models", f"{model}.onnx"), "--onnx-ignore-output-shapes"]
    for i in r["inputs"]:
        dt = {"float32": "f32", "int64": "i64"}[i["dtype"]]
        args += ["-i", ",".join(map(str, i["shape"])) + "," + dt]
    return args


def bench_tract(model, threads, iters):
    os.environ["TRACT_NUM_THREADS"] = str(threads)
    args = tract_args(model)
    # Latency: tract's own bench loop on the optimised model.
    out = run_measured(args + ["-O", "bench", "-R"])
    m = re.search(r"([0-9.]+)\s*(ms|us|µs|s)/i", out) or re.search(r"([0-9.]+)\s*(ms|us|µs|s)", out)
    scale = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}
    median = float(m.group(1)) * scale[m.group(2)] if m else float("nan")
    # Load to first result and peak memory: one whole `run` process (includes process start).
    t = time.perf_counter()
    rss = peak_rss_of(args + ["-O", "run", "-R"])
    first = (time.perf_counter() - t) * 1e3
    return {"median_ms": median, "p90_ms": float("nan"), "load_to_first_ms": first, "peak_rss_bytes": rss}


def pingpong_binary():
    """Builds scripts/bench/pingpong.c (the two cores' round trip) with cc; None without cc or a
    second CPU."""
    src = os.path.join(ROOT, "scripts", "bench", "pingpong.c")
    exe = os.path.join(OUT, "pingpong")
    if (os.cpu_count() or 1) < 2 or shutil.which("cc") is None:
        return None
    if subprocess.run(["cc", "-O2", "-pthread", src, "-o", exe], capture_output=True).returncode != 0:
        return None
    return exe


def round_trip_ns(exe):
    """The cores' round trip now, in ns (None if it could not be measured)."""
    if exe is None:
        return None
    r = subprocess.run([exe], capture_output=True, text=True)
    try:
        return int(float(r.stdout.strip()))
    except ValueError:
        return None


def machine():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = open("/proc/cpuinfo").read()
    isa = [f for f in ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni"] if f" {f}" in flags]
    return f"{cpu}, {os.cpu_count()} cores ({', '.join(isa)}), {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--no-tract", action="store_true")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    have_tract = shutil.which("tract") is not None and not a.no_tract
    efms = {m: compile_efm(m) for m in a.models}
    runners = [("edgefuse", lambda m: bench_edgefuse(m, efms[m], a.threads, a.iters)),
               ("onnxruntime", lambda m: bench_ort(m, a.threads, a.iters))]
    if have_tract:
        runners.append(("tract", lambda m: bench_tract(m, a.threads, a.iters)))
    results = {m: {name: [] for name, _ in runners} for m in a.models}
    pingpong = pingpong_binary()
    trips = []
    for rnd in range(a.rounds):
        trips.append(round_trip_ns(pingpong))
        order = runners[rnd % len(runners):] + runners[:rnd % len(runners)]
        for m in a.models:
            for name, fn in order:
                try:
                    results[m][name].append(fn(m))
                except Exception as e:  # a peer that cannot run a model is reported, not fatal
                    print(f"{name} on {m}: {e}", file=sys.stderr)
        trips.append(round_trip_ns(pingpong))
        print(f"round {rnd + 1}/{a.rounds} done", file=sys.stderr)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"args": vars(a), "trips_ns": trips, "results": results}, f, indent=1)
    write_report(a, results, [n for n, _ in runners], trips)


def agg(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None and r[key] == r[key]]
    return statistics.median(vals) if vals else float("nan")


def fmt(v, unit=""):
    return "—" if v != v else f"{v:.3f}{unit}" if v < 10 else f"{v:.1f}{unit}"


def write_report(a, results, names, trips):
    ort_version = next((r[0]["version"] for m in results.values() for n, r in m.items() if n == "onnxruntime" and r), "?")
    lines = ["<!-- BENCH:cpu:start -->", "## CPU latency: edgefuse beside onnxruntime and tract", "",
             f"- machine: {machine()}",
             f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             f"- command: `./scripts/bench.sh --threads {a.threads} --rounds {a.rounds} --iters {a.iters}`",
             f"- peers: onnxruntime {ort_version} (PyPI, CPU EP, intra-op threads = {a.threads}), "
             f"tract-cli (`tract M.onnx -i SHAPE --onnx-ignore-output-shapes -O bench -R`, TRACT_NUM_THREADS={a.threads})",
             f"- batch and input shapes as in `../shared/models/refs`; edgefuse fp32; {a.rounds} rounds, runtimes "
             "alternating, each in a fresh process; latency = median over rounds of each round's median "
             f"({a.iters} iterations after 200 ms of untimed warm-up runs, the same for edgefuse and onnxruntime), "
             "p90 likewise",
             "- load→first: edgefuse and onnxruntime in-process (file open to first result); tract is the wall time "
             "of a whole `tract -O run` process. Peak RSS is the whole process (onnxruntime's includes Python and "
             "numpy: its baseline before the session is shown).",
             "- the two cores' round trip (`scripts/bench/pingpong.c`) before and after each round, ns: "
             + (", ".join(f"{trips[i]}–{trips[i + 1]}" for i in range(0, len(trips), 2))
                if trips and all(t is not None for t in trips) else "not measured")
             + " (this VM's vCPUs share a die at ~60 ns and sit on two at ~340 ns, where every 2-thread "
             "latency rises: BENCHMARKS.md, \"Session of 2026-11-30 04:00\")", "",
             "- ratios: edgefuse / onnxruntime for the median, the p90, load→first and peak RSS (against "
             "onnxruntime's whole process), and edgefuse / tract for the median.", "",
             "| model | edgefuse median ms | p90 | onnxruntime median ms | p90 | tract median ms | edgefuse / ort | p90 ef / ort | edgefuse / tract | load→first ms (ef / ort / tract) | load→first ef / ort | peak RSS MB (ef / ort [py base] / tract) | RSS ef / ort |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    def ratio(x, y):
        r = x / y if y else float("nan")
        return "—" if r != r else fmt(r) + "×"
    for m, r in results.items():
        ef, ort_, tr = r.get("edgefuse", []), r.get("onnxruntime", []), r.get("tract", [])
        efm, ortm, trm = agg(ef, "median_ms"), agg(ort_, "median_ms"), agg(tr, "median_ms")
        mb = lambda runs, k="peak_rss_bytes": agg(runs, k) / 1e6
        efp, ortp = agg(ef, "p90_ms"), agg(ort_, "p90_ms")
        efl, ortl = agg(ef, "load_to_first_ms"), agg(ort_, "load_to_first_ms")
        lines.append(
            f"| {m} | {fmt(efm)} | {fmt(efp)} | {fmt(ortm)} | {fmt(ortp)} | {fmt(trm)} | "
            f"{ratio(efm, ortm)} | {ratio(efp, ortp)} | {ratio(efm, trm)} | "
            f"{fmt(efl)} / {fmt(ortl)} / {fmt(agg(tr, 'load_to_first_ms'))} | {ratio(efl, ortl)} | "
            f"{fmt(mb(ef))} / {fmt(mb(ort_))} [{fmt(mb(ort_, 'baseline_rss_bytes'))}] / {fmt(mb(tr))} | "
            f"{ratio(mb(ef), mb(ort_))} |")
    lines += ["", "<!-- BENCH:cpu:end -->"]
    section = "\n".join(lines) + "\n"
    path = os.path.join(ROOT, "BENCHMARKS.md")
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n\nMeasured numbers; every table says the machine, date and command that produced it.\n\n"
    if "<!-- BENCH:cpu:start -->" in old:
        old = re.sub(r"<!-- BENCH:cpu:start -->.*?<!-- BENCH:cpu:end -->\n?", lambda _: section, old, flags=re.S)
    else:
        old = old.rstrip("\n") + "\n\n" + section
    open(path, "w").write(old)
    print(section)


if __name__ == "__main__":
    main()

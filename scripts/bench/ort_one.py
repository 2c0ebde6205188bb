"""Measures onnxruntime on one model in a fresh process; prints one JSON line.

Usage: ort_one.py MODEL.onnx REFS_DIR THREADS ITERS
"""
import json
import resource
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

model, refs_dir, threads, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
refs = json.load(open(f"{refs_dir}/refs.json"))
feeds = {i["name"]: np.load(f"{refs_dir}/{i['file']}") for i in refs["inputs"]}
def vm_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


baseline_rss = vm_rss()
t_import = time.perf_counter()
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
sess.run(None, feeds)
load_to_first = (time.perf_counter() - t_import) * 1e3
# Warm-up as `edgefuse bench --warmup-ms 200` does: untimed runs for 200 ms.
warm = time.perf_counter()
while True:
    sess.run(None, feeds)
    if time.perf_counter() - warm >= 0.2:
        break
times = []
for _ in range(iters):
    t = time.perf_counter()
    sess.run(None, feeds)
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(json.dumps({
    "median_ms": times[len(times) // 2],
    "p90_ms": times[int(0.9 * (len(times) - 1))],
    "load_to_first_ms": load_to_first,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "baseline_rss_bytes": baseline_rss,
    "version": ort.__version__,
}))

#!/usr/bin/env bash
# Old against new, per node: runs two builds of `profile_efm` alternately on one model and prints,
# for each node (regex filter on its name), the minimum over the rounds of its mean time, then
# each build's median of its per-round medians. The minimum over alternating rounds is what
# BENCHMARKS.md calls "node minima": on a machine with loud neighbours it is steadier than any
# single run.
#   cargo build --release -p edgefuse-runtime --example profile_efm   # for each build, copied away
#   scripts/bench/ab-nodes.sh OLD_PROFILE_EFM NEW_PROFILE_EFM MODEL.efm [THREADS] [ITERS] [ROUNDS] [FILTER]
set -euo pipefail
old=$1 new=$2 model=$3 threads=${4:-2} iters=${5:-150} rounds=${6:-6} filter=${7:-.}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for i in $(seq "$rounds"); do
  "$old" "$model" "$threads" "$iters" 100000 > "$dir/old_$i.txt"
  "$new" "$model" "$threads" "$iters" 100000 > "$dir/new_$i.txt"
done
python3 - "$dir" "$rounds" "$filter" <<'PY'
import re, statistics, sys
d, rounds, flt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(b):
    nodes, meds = {}, []
    for i in range(1, rounds + 1):
        lines = open(f"{d}/{b}_{i}.txt").read().splitlines()
        meds.append(float(re.search(r"median ([0-9.]+)", lines[0]).group(1)))
        for l in lines[1:]:
            p = l.split()
            nodes.setdefault(p[-1], []).append(float(p[1]))
    return nodes, meds
(o, mo), (n, mn) = load("old"), load("new")
so = sn = 0.0
for k in o:
    if not re.search(flt, k) or k not in n:
        continue
    a, b = min(o[k]), min(n[k])
    so, sn = so + a, sn + b
    print(f"{k[-48:]:48} {a:8.4f} {b:8.4f} ms  {b / a if a else 0:5.2f}")
print(f"sum of node minima: old {so:.3f} new {sn:.3f} ms")
print(f"model, median of round medians: old {statistics.median(mo):.3f} new {statistics.median(mn):.3f} ms")
PY

#!/usr/bin/env bash
# Benchmarks edgefuse beside onnxruntime (PyPI) and tract (cargo install tract-cli) on the
# reference models, same thread count and batch, alternating, and writes BENCHMARKS.md.
#   ./scripts/bench.sh [--threads 2] [--rounds 5] [--iters 200]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q onnxruntime numpy >/dev/null
command -v tract >/dev/null || cargo install --locked tract-cli
cargo build --release --bin edgefuse
python3 scripts/bench/bench.py "$@"

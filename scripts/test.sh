#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls it).
#  1. the whole workspace on this host, profile `ci` (release optimisation, no LTO): the golden
#     tests run the real models, so they need optimised code;
#  2. the aarch64 leg (scripts/test-aarch64.sh): device binary, runtime and kernels suites and the
#     reference models under qemu-aarch64. Skip it with EDGEFUSE_AARCH64=0.
# Arguments go to the host `cargo test` (e.g. `./scripts/test.sh --test golden`).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
# NVRTC from PyPI (nvidia-cuda-nvrtc-cu12), when installed, lets the CUDA kernel compile test run
# without a GPU; .ci/run installs it and sets EDGEFUSE_REQUIRE_NVRTC=1.
nvrtc=$(python3 -c 'import nvidia.cuda_nvrtc as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
[ -n "$nvrtc" ] && export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo test --profile ci --workspace "$@"
# The int8 and fused CUDA kernels' arithmetic run on the CPU against onnxruntime and the unfused
# kernels (scripts/cuda-emu/check.py, ~1 min on 2 cores): needs g++ and python3 with numpy, onnx and onnxruntime. .ci/run installs them and sets
# EDGEFUSE_REQUIRE_EMU=1, so there a missing piece fails instead of skipping.
if command -v g++ >/dev/null && python3 -c 'import numpy, onnx, onnxruntime' 2>/dev/null; then
    python3 scripts/cuda-emu/check.py
elif [ "${EDGEFUSE_REQUIRE_EMU:-0}" = 1 ]; then
    echo "cuda-emu: needs g++ and python3 with numpy, onnx and onnxruntime" >&2
    exit 1
else
    echo "cuda-emu: skipped (needs g++ and python3 with numpy, onnx and onnxruntime)"
fi
# The CUDA backend end to end on the emulated GPU (scripts/cuda-emu/fake: a fake CUDA driver,
# cuDNN and cuBLAS; the kernels compiled by g++ and run on the CPU, NVRTC still compiling every
# one as on a device): the runtime's CUDA unit tests, then five reference models' CUDA tests
# against the refs, two of them again as an integrated GPU (~1.5 min on 2 cores, plus ~1 min the
# first time: the fake libraries' build and NVRTC's compile of every kernel). Needs an x86-64
# host, g++ 12 or later and NVRTC (same rules as above: EDGEFUSE_REQUIRE_EMU=1 fails without).
gxx_major=$(g++ -dumpversion 2>/dev/null | cut -d. -f1 || true)
if [ "$(uname -m)" = x86_64 ] && [ "${gxx_major:-0}" -ge 12 ] 2>/dev/null && [ -n "$nvrtc" ]; then
    t1=$(date +%s)
    scripts/cuda-emu/fake-gpu.sh cargo test --profile ci --workspace --lib -- cuda::
    # (One test at a time: each counts the host allocations of 20 replays.)
    scripts/cuda-emu/fake-gpu.sh cargo test --profile ci --test cuda_models -- --test-threads 1 --exact \
        fp16::seed_cnn_mnist fp16::seed_lstm_textgen fp32::seed_cnn_mnist fp16::efficientnet_lite0 \
        fp32::mobilenet_v2_int8_qdq
    # …and as an integrated GPU (a Jetson's unified memory: inputs and outputs mapped, not copied).
    EDGEFUSE_FAKE_GPU_INTEGRATED=1 scripts/cuda-emu/fake-gpu.sh cargo test --profile ci --test cuda_models -- \
        --test-threads 1 --exact fp16::seed_cnn_mnist fp32::seed_lstm_textgen
    echo "emulated GPU: $(( $(date +%s) - t1 )) s"
elif [ "${EDGEFUSE_REQUIRE_EMU:-0}" = 1 ]; then
    echo "emulated GPU: needs an x86-64 host, g++ 12 or later and NVRTC (pip install nvidia-cuda-nvrtc-cu12)" >&2
    exit 1
else
    echo "emulated GPU: skipped (needs an x86-64 host, g++ 12 or later and NVRTC: pip install nvidia-cuda-nvrtc-cu12)"
fi
echo "host leg: $(( $(date +%s) - t0 )) s"
if [ "${EDGEFUSE_AARCH64:-1}" != 0 ]; then
    ./scripts/test-aarch64.sh
fi

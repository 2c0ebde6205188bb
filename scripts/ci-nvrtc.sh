#!/usr/bin/env bash
# CI without a GPU: compile every CUDA kernel in kernels/cuda/ for sm_72 (Xavier), sm_87 (Orin)
# and sm_90 (H100) through the runtime's own NVRTC path (edgefuse_runtime::cuda::nvrtc::compile).
# NVRTC needs no GPU and no driver; pip's nvidia-cuda-nvrtc-cu12 brings libnvrtc.so.12.
# With EDGEFUSE_REQUIRE_NVRTC=1 the test fails (instead of skipping) when libnvrtc is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check nvidia-cuda-nvrtc-cu12
lib=$(python3 -c 'import nvidia.cuda_nvrtc as m, os; print(os.path.join(list(m.__path__)[0], "lib"))')
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EDGEFUSE_REQUIRE_NVRTC=1
cargo test --profile ci -p edgefuse-runtime --features cuda --lib cuda::nvrtc -- --nocapture

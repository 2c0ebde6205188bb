#!/usr/bin/env bash
# Runs a command with the emulated GPU (scripts/cuda-emu/fake) in place of the CUDA driver,
# cuDNN and cuBLAS, and pip's NVRTC: the CUDA backend, unchanged, runs its kernels on the CPU.
#   scripts/cuda-emu/fake-gpu.sh cargo test --profile ci -p edgefuse-runtime --features cuda --lib -- cuda::
# Builds the fake libraries first if they are missing or older than their sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${EDGEFUSE_FAKE_GPU_DIR:-$root/target/cuda-fake}"
# Rebuilt when any of the three libraries is missing or older than a source.
stale=0
for l in libcuda.so.1 libcudnn.so.9 libcublas.so.12; do
    if [[ ! -e "$out/lib/$l" ]] || [[ -n "$(find "$here/fake" "$root/kernels/cuda" -newer "$out/lib/$l" -type f \
            \( -name '*.cpp' -o -name '*.h' -o -name '*.c' -o -name '*.py' -o -name '*.cu' -o -name '*.cuh' \) | head -1)" ]]; then
        stale=1
    fi
done
if [[ $stale = 1 ]]; then
    python3 "$here/fake/build.py" "$out" >&2
fi
nvrtc="$(python3 -c 'import nvidia.cuda_nvrtc as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)"
export LD_LIBRARY_PATH="$out/lib${nvrtc:+:$nvrtc}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EDGEFUSE_FAKE_GPU=1
# A CUDA test that cannot open the (emulated) GPU fails instead of skipping.
export EDGEFUSE_REQUIRE_GPU=1
exec "$@"

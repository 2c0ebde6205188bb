#!/usr/bin/env bash
# The aarch64 leg: cross-compile the device binary and the runtime + kernels test suites for
# aarch64-unknown-linux-gnu with Debian's cross gcc (no Docker), and run them under qemu-aarch64
# with QEMU_CPU=max (NEON, dotprod, fp16): every kernel family the emulated CPU supports is checked
# against the portable path, and the reference models, compiled to .efm on this x86-64 host, must
# match onnxruntime's outputs within the exactness tolerance when run on aarch64.
#
# Needs: ../shared; builds the host binary (profile ci, as scripts/test.sh does) if missing. Installs the
# aarch64 target, gcc-aarch64-linux-gnu and qemu-user when they are missing (apt, as root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
TD=${CARGO_TARGET_DIR:-target}
SHARED=${EDGEFUSE_SHARED:-../shared}
t0=$(date +%s)

need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
# bindgen (the v4l crate) needs libclang to generate the V4L2 bindings.
ldconfig -p | grep -q 'libclang[-.0-9]*\.so' || need_apt+=(libclang-dev)
if ((${#need_apt[@]})); then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
rustup target list --installed | grep -qx $TARGET || rustup target add $TARGET

# 1. Reference models compiled on the host (fp32), to be run on aarch64.
HOST_BIN=${EDGEFUSE_HOST_BIN:-target/ci/edgefuse}
[ -x $HOST_BIN ] || cargo build --profile ci -p edgefuse
EFM_DIR=$PWD/target/aarch64-efm
mkdir -p "$EFM_DIR"
for refs in "$SHARED"/models/refs/*/; do
    model=$(basename "$refs")
    [ -f "$SHARED/models/$model.onnx" ] || continue
    # --input NAME=SHAPE for every input, from refs.json.
    mapfile -t inputs < <(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1]))["inputs"]:
    print("%s=%s" % (e["name"], "x".join(str(d) for d in e["shape"])))' "$refs/refs.json")
    args=()
    for i in "${inputs[@]}"; do args+=(--input "$i"); done
    $HOST_BIN compile "$SHARED/models/$model.onnx" -o "$EFM_DIR/$model.efm" "${args[@]}" >/dev/null
done
echo "aarch64 leg: $(ls "$EFM_DIR" | wc -l) models compiled on $(uname -m)"

# 2. The device binaries, as the boards build them, and their stripped sizes (targets: CPU-only
#    <= 6 MB, with CUDA <= 10 MB). The CPU one must run here under emulation.
size_of() { stat -c %s "$1"; }
cargo build --profile device --target $TARGET -p edgefuse --no-default-features --features v4l
aarch64-linux-gnu-strip -o target/edgefuse-aarch64-cpu $TD/$TARGET/device/edgefuse
cargo build --profile device --target $TARGET -p edgefuse --no-default-features --features cuda,v4l
aarch64-linux-gnu-strip -o target/edgefuse-aarch64-cuda $TD/$TARGET/device/edgefuse
cpu=$(size_of target/edgefuse-aarch64-cpu); cuda=$(size_of target/edgefuse-aarch64-cuda)
echo "aarch64 device binary, stripped: cpu+v4l $cpu bytes, cuda+v4l $cuda bytes"
[ "$cpu" -le 6000000 ] || { echo "error: CPU-only device binary is $cpu bytes, over 6 MB"; exit 1; }
[ "$cuda" -le 10000000 ] || { echo "error: CUDA device binary is $cuda bytes, over 10 MB"; exit 1; }
QEMU_CPU=max qemu-aarch64 -L /usr/aarch64-linux-gnu target/edgefuse-aarch64-cpu inspect "$EFM_DIR/seed_cnn_mnist.efm" >/dev/null
# The CUDA build on a machine without CUDA: `--backend auto` must fall back to the CPU.
ref=$SHARED/models/refs/seed_cnn_mnist
inp=$(python3 -c 'import json, sys
e = json.load(open(sys.argv[1] + "/refs.json"))["inputs"][0]
print(e["name"] + "=" + sys.argv[1] + "/" + e["file"])' "$ref")
QEMU_CPU=max qemu-aarch64 -L /usr/aarch64-linux-gnu target/edgefuse-aarch64-cuda run \
    "$EFM_DIR/seed_cnn_mnist.efm" --input "$inp" --output-dir target/aarch64-run --backend auto

# 3. Runtime and kernels suites under emulation, the portability golden test included.
export QEMU_CPU=max EDGEFUSE_EFM_DIR=$EFM_DIR EDGEFUSE_REQUIRE_EFM=${EDGEFUSE_REQUIRE_SHARED:-0}
cargo test --release --target $TARGET -p edgefuse-runtime -p edgefuse-kernels "$@"
echo "aarch64 leg: $(( $(date +%s) - t0 )) s"

#!/usr/bin/env bash
# Sets up a fresh Debian machine (Rust stable present) and runs the main job on its built-in default:
# camera to label. Without a camera it classifies the photographs and the recorded YUYV clip shipped
# in examples/demo; `./scripts/setup-and-demo.sh --source /dev/video0` reads the camera (Ctrl-C ends).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build dependencies: libclang for bindgen (the V4L2 camera bindings), pkg-config.
if ! dpkg -s libclang-dev pkg-config >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev pkg-config >/dev/null
fi

SOURCE=""
if [ "${1:-}" = "--source" ] && [ -n "${2:-}" ]; then SOURCE="$2"; fi

cargo build --release --features v4l --bin edgefuse --example mnist_cnn

SHARED="${EDGEFUSE_SHARED:-../shared}"
EF=./target/release/edgefuse
mkdir -p target/demo
# Main job: compile EfficientNet-Lite0 with its preprocessing and the ImageNet labels recorded in
# the .efm, then classify frames: top-3 labels, per-stage timings and frames per second.
$EF compile "$SHARED/models/efficientnet_lite0.onnx" -o target/demo/effnet.efm \
  --preprocess efficientnet_lite0 --labels "$SHARED/data/imagenet_labels_1000.txt"
$EF inspect target/demo/effnet.efm | sed -n 1,9p
if [ -n "$SOURCE" ]; then
  $EF classify target/demo/effnet.efm --source "$SOURCE" --top 3
else
  $EF classify target/demo/effnet.efm --source examples/demo --top 3                     # photographs
  $EF classify target/demo/effnet.efm --source examples/demo/clip.yuyv:192x144 --top 3   # recorded YUYV clip
  echo "(with a camera: ./scripts/setup-and-demo.sh --source /dev/video0)"
fi

# The seed document's MNIST CNN on the 2,000 held-out digits (accuracy and latency).
$EF compile "$SHARED/models/seed_cnn_mnist.onnx" -o target/demo/mnist.efm --input image=1x1x28x28 >/dev/null
./target/release/examples/mnist_cnn target/demo/mnist.efm \
  "$SHARED/data/mnist/test-images-idx3-ubyte.gz" "$SHARED/data/mnist/test-labels-idx1-ubyte.gz"

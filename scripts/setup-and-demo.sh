#!/usr/bin/env bash
# Sets up a fresh Debian machine (Rust stable present) and runs the main job on its built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build dependencies: libclang for bindgen (the V4L2 camera bindings), pkg-config.
if ! dpkg -s libclang-dev pkg-config >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev pkg-config >/dev/null
fi

cargo build --release --bin edgefuse --example mnist_cnn

SHARED="${EDGEFUSE_SHARED:-../shared}"
mkdir -p target/demo
# Main job: compile the seed CNN, inspect it, run it on the held-out MNIST digits.
./target/release/edgefuse compile "$SHARED/models/seed_cnn_mnist.onnx" -o target/demo/mnist.efm --input image=1x1x28x28
./target/release/edgefuse inspect target/demo/mnist.efm | head -12
./target/release/examples/mnist_cnn target/demo/mnist.efm \
  "$SHARED/data/mnist/test-images-idx3-ubyte.gz" "$SHARED/data/mnist/test-labels-idx1-ubyte.gz"

#!/usr/bin/env bash
# Measures the quantization targets (BENCHMARKS.md, "Quantization: fp16 and int8 PTQ").
# Needs ../shared (models and data) and python3 with numpy and Pillow (for the photographs).
# Usage: scripts/quant/measure.sh [minmax|percentile|entropy]
set -euo pipefail
cd "$(dirname "$0")/../.."
METHOD=${1:-minmax}
S=${EDGEFUSE_SHARED:-../shared}
M=$S/models
D=$S/data
B=target/release/edgefuse
T=${TMPDIR:-/tmp}/edgefuse-quant
mkdir -p "$T"
cargo build --release --quiet

size() { stat -c %s "$1"; }
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }

echo "== seed_cnn_mnist: calibrate on the 8,000 training digits, validate on the 2,000 test digits"
$B compile "$M/seed_cnn_mnist.onnx" -o "$T/mnist-int8.efm" --precision int8 --calibration "$METHOD" \
  --calibrate "$D/mnist/train-images-idx3-ubyte.gz" --validate "$D/mnist/test-images-idx3-ubyte.gz" | grep -E "top-1|→"

echo "== seed_cnn_fashion: calibrate on calib-2k, validate on the 10k test set"
$B compile "$M/seed_cnn_fashion.onnx" -o "$T/fashion-int8.efm" --precision int8 --calibration "$METHOD" \
  --calibrate "$D/fashion-mnist/calib-2k-images-idx3-ubyte.gz" \
  --validate "$D/fashion-mnist/t10k-images-idx3-ubyte.gz" --report "$T/fashion-int8.html" | grep -E "top-1|→"

echo "== seed_lstm_textgen: calibrate on the 16 reference windows, validate on the 3,574 test windows"
$B compile "$M/seed_lstm_textgen.onnx" -o "$T/lstm-int8.efm" --input tokens=1x20 --precision int8 \
  --calibration "$METHOD" --calibrate "$M/refs/seed_lstm_textgen/input_0.npy" \
  --validate "$D/text/seed_lstm_test_x.npy" --validate-labels "$D/text/seed_lstm_test_y.npy" | grep -E "top-1|→"

echo "== efficientnet_lite0: 64 calibration crops; agreement with fp32 on 10 photographs × 7 variants"
python3 scripts/quant/images_to_npy.py "$D/images" "$T/images" --calib 64
$B compile "$M/efficientnet_lite0.onnx" -o "$T/eff-fp32-eval.efm" --input input=70x3x224x224 >/dev/null
rm -rf "$T/eff-out" && $B run "$T/eff-fp32-eval.efm" --input "$T/images/eval.npy" --output-dir "$T/eff-out" >/dev/null
python3 -c "import numpy as np,glob; np.save('$T/images/fp32_top1.npy', np.load(glob.glob('$T/eff-out/*.npy')[0]).argmax(1).astype(np.int64))"
/usr/bin/time -f "compile time: %e s wall, %U s user" \
  $B compile "$M/efficientnet_lite0.onnx" -o "$T/eff-int8.efm" --precision int8 --calibration "$METHOD" \
  --calibrate "$T/images/calib.npy" | grep -E "→"
$B compile "$M/efficientnet_lite0.onnx" -o "$T/eff-int8-check.efm" --precision int8 --calibration "$METHOD" \
  --calibrate "$T/images/calib.npy" --validate "$T/images/eval.npy" --validate-labels "$T/images/fp32_top1.npy" \
  --report "$T/eff-int8.html" | grep -E "top-1"
echo "(top-1 here is agreement with fp32's top-1: fp32 is 100 % by construction)"
$B compile "$M/efficientnet_lite0.onnx" -o "$T/eff-fp16.efm" --precision fp16 | grep -E "→"
for m in efficientnet_lite0:eff-int8 seed_lstm_textgen:lstm-int8 seed_cnn_fashion:fashion-int8; do
  onnx=${m%%:*}; efm=${m##*:}
  echo "size $onnx int8: $(size "$T/$efm.efm") bytes = $(ratio "$(size "$T/$efm.efm")" "$(size "$M/$onnx.onnx")") × the ONNX"
done
echo "size efficientnet_lite0 fp16: $(size "$T/eff-fp16.efm") bytes = $(ratio "$(size "$T/eff-fp16.efm")" "$(size "$M/efficientnet_lite0.onnx")") × the ONNX"
echo "reports: $T/fashion-int8.html $T/eff-int8.html"

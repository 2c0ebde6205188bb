#!/usr/bin/env bash
# The CUDA device check, in two steps.
#
#   scripts/gpu-check.sh prepare       # here (cargo, ../shared): builds and collects into carry/gpu-check/
#   scripts/gpu-check.sh run           # on the GPU machine (no cargo, no network), from the repo root
#   scripts/gpu-check.sh prepare-large # after prepare: carry/gpu-check-large/ with the executables
#                                      # and the fp32 files too big for the first carry (ddddocr)
#   GPU_CHECK_DIR=carry/gpu-check-large SKIP_TORCH=1 SKIP_UNIT=1 scripts/gpu-check.sh run
#
# Rehearsed here, on the emulated GPU, before a GPU machine's minutes are spent on it (results
# only; GPU_CHECK_ITERS sets the runs per median, GPU_CHECK_MODELS filters the model tests), on
# a copy, since a run unpacks and writes into its folder (the carry must stay under 64 MiB):
#   rm -rf /tmp/gc && cp -r carry/gpu-check /tmp/gc && GPU_CHECK_DIR=/tmp/gc GPU_CHECK_ITERS=2 \
#       GPU_CHECK_MODELS=seed_cnn_mnist SKIP_TORCH=1 OUT=/tmp/rehearsal \
#       scripts/cuda-emu/fake-gpu.sh scripts/gpu-check.sh run
#
# prepare: the device binary (--no-default-features --features cuda), the runtime's CUDA unit
# tests and tests/cuda_models.rs as executables, the seven reference models compiled fp32 (and
# fp16 where this build can), batch-1 copies of the seed models for benchmarking, and the refs,
# all in carry/gpu-check/ (ignored by git), kept under 64 MiB: what does not fit is listed in
# carry/gpu-check/MANIFEST and its tests say they were skipped.
#
# run: the CUDA test suite (every model equal to the refs: fp32 within 1e-4·max(1,max|ref|),
# fp16 same top-1 and within 1e-2, computing in f16 on tensor cores), then
# `edgefuse bench --backend cuda` per model and precision (fp16 files run in fp16) beside
# PyTorch (eager and CUDA-graph replay) on the same card, printed as one table, and the models
# whose kernels fuse (runtime/src/cuda/fuse.rs) against `bench --no-fuse`; then
# onnxruntime's quantize_dynamic variants of three models (scripts/gpu/dynamic_models.py:
# outputs against onnxruntime's, latency); logs and the table go to $OUT (or
# carry/gpu-check/out).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${GPU_CHECK_DIR:-carry/gpu-check}
BUDGET=$((60 * 1024 * 1024))   # 64 MiB carry limit, minus room for the repository's own tree (~4 MiB)
MODELS="seed_cnn_mnist seed_cnn_fashion seed_lstm_textgen efficientnet_lite0 mobilenet_v2_int8_qdq silero_vad_16k_sequence ddddocr_crnn"

# The executable cargo built for a `--no-run --message-format=json` invocation.
executable() {
    python3 -c '
import json, sys
exe = [j["executable"] for j in map(json.loads, sys.stdin)
       if j.get("reason") == "compiler-artifact" and j.get("executable") and j["profile"]["test"]]
print(exe[-1])'
}

# Input shapes from refs.json, as NAME=AxBxC (batch replaced by 1 when $2 is "b1").
shapes() {
    python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for i in j["inputs"]:
    s = list(i["shape"])
    if sys.argv[2] == "b1":
        s[0] = 1
    print(f'--input {i["name"]}={"x".join(map(str, s))}')
PY
}

prepare() {
    local shared=${EDGEFUSE_SHARED:-../shared}/models
    [ -f "$shared/MANIFEST.md" ] || { echo "gpu-check prepare: $shared not found" >&2; exit 1; }
    rm -rf "$D" && mkdir -p "$D"/{bin,models,bench,refs,staged}
    echo "== building (release): compiler CLI, device binary, test executables"
    cargo build --release --bin edgefuse
    local host_cli=target/release/edgefuse.host
    cp target/release/edgefuse "$host_cli"
    cargo build --release --no-default-features --features cuda --bin edgefuse
    cp target/release/edgefuse "$D/bin/edgefuse"
    cargo test --release -p edgefuse-runtime --features cuda --lib --no-run --message-format=json \
        | executable | xargs -I{} cp {} "$D/bin/runtime-tests"
    cargo test --release --no-default-features --features cuda --test cuda_models --no-run \
        --message-format=json | executable | xargs -I{} cp {} "$D/bin/cuda_models"
    command -v strip >/dev/null && strip "$D"/bin/* || true
    # The executables compress about 3.5x; 'run' unpacks them.
    xz -T0 -6 "$D"/bin/*

    echo "== compiling the reference models"
    for m in $MODELS; do
        cp -r "$shared/refs/$m" "$D/refs/"
        # shellcheck disable=SC2046
        "$host_cli" compile "$shared/$m.onnx" -o "$D/staged/$m.fp32.efm" $(shapes "$shared/refs/$m/refs.json" full) >/dev/null
        # shellcheck disable=SC2046
        if ! "$host_cli" compile "$shared/$m.onnx" -o "$D/staged/$m.fp16.efm" --precision fp16 \
                $(shapes "$shared/refs/$m/refs.json" full) >/dev/null 2>"$D/staged/$m.fp16.err"; then
            echo "fp16 $m: $(head -1 "$D/staged/$m.fp16.err")" >> "$D/MANIFEST.omitted"
            rm -f "$D/staged/$m.fp16.efm"
        fi
        case $m in seed_*)
            # shellcheck disable=SC2046
            "$host_cli" compile "$shared/$m.onnx" -o "$D/staged/$m.b1.fp32.efm" $(shapes "$shared/refs/$m/refs.json" b1) >/dev/null
            # shellcheck disable=SC2046
            "$host_cli" compile "$shared/$m.onnx" -o "$D/staged/$m.b1.fp16.efm" --precision fp16 \
                $(shapes "$shared/refs/$m/refs.json" b1) >/dev/null 2>&1 || rm -f "$D/staged/$m.b1.fp16.efm"
        esac
        rm -f "$D/staged/$m.fp16.err"
    done

    echo "== packing within $((BUDGET / 1024 / 1024)) MiB"
    local used
    used=$(du -sb "$D" --exclude=staged | cut -f1)
    # The fp16 EfficientNet-Lite0 first (its bench row has a target: <= 0.35 ms on the H100), then
    # smallest first, so as many models as possible make it; a bench copy is its own file.
    local first="$D/staged/efficientnet_lite0.fp16.efm"
    for f in $( [ -f "$first" ] && echo "$first"; ls -S -r "$D"/staged/*.efm | grep -vxF "$first"); do
        local size
        size=$(stat -c %s "$f")
        local name
        name=$(basename "$f")
        if [ $((used + size)) -le $BUDGET ]; then
            case $name in *.b1.*) mv "$f" "$D/bench/${name/.b1/}" ;; *) mv "$f" "$D/models/$name" ;; esac
            used=$((used + size))
        else
            echo "$name: $((size / 1024 / 1024)) MiB does not fit the 64 MiB carry" >> "$D/MANIFEST.omitted"
        fi
    done
    rmdir "$D/staged" 2>/dev/null || rm -rf "$D/staged"
    # onnxruntime's quantize_dynamic models (the GPU's dynamic int8 ops), as far as they fit.
    echo "== quantize_dynamic models (scripts/gpu/dynamic_models.py)"
    local dq=$D/staged-dynq
    python3 scripts/gpu/dynamic_models.py prepare "$dq" "$host_cli" "$shared" 2>"$D/dynq.log" \
        || echo "quantize_dynamic models: $(tail -1 "$D/dynq.log")" >> "$D/MANIFEST.omitted"
    rm -f "$D/dynq.log"
    mkdir -p "$D/dynq"
    for m in seed_cnn_mnist seed_lstm_textgen efficientnet_lite0; do
        [ -f "$dq/$m.dynq.efm" ] || continue
        local size
        size=$(cat "$dq/$m".* | wc -c)
        if [ $((used + size)) -le $BUDGET ]; then
            mv "$dq/$m".* "$D/dynq/"
            used=$((used + size))
        else
            echo "$m.dynq: $((size / 1024 / 1024)) MiB does not fit the 64 MiB carry" >> "$D/MANIFEST.omitted"
        fi
    done
    rm -rf "$dq"
    {
        echo "# gpu-check carry, prepared $(date -u +%FT%TZ) at $(git rev-parse --short HEAD)"
        (cd "$D" && find . -type f ! -name MANIFEST ! -name MANIFEST.omitted | sort | xargs ls -l | awk '{print $5, $9}')
        echo "# omitted"
        cat "$D/MANIFEST.omitted" 2>/dev/null || true
    } > "$D/MANIFEST"
    rm -f "$D/MANIFEST.omitted"
    du -sh "$D"
    cat "$D/MANIFEST"
}

run() {
    [ -f "$D/bin/edgefuse.xz" ] || [ -x "$D/bin/edgefuse" ] || { echo "gpu-check run: $D is missing; run 'prepare' first" >&2; exit 1; }
    for x in "$D"/bin/*.xz; do [ -f "$x" ] && xz -d -k -f "$x" && chmod +x "${x%.xz}"; done
    # Everything is written under $D/out and packed into one archive in $OUT at the end (the
    # device tool brings back only a few files).
    local out=$D/out
    rm -rf "$out" && mkdir -p "$out"
    # (Runs at exit, after this function's locals are gone: paths spelled out.)
    trap 'tar czf "${OUT:-$D}/gpu-check-out.tar.gz" -C "$D/out" . ; cp "$D/out/table.md" "${OUT:-$D}/" 2>/dev/null || true' EXIT
    export LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    local abs
    case $D in /*) abs=$D ;; *) abs=$PWD/$D ;; esac
    export EDGEFUSE_GPU_CHECK_DIR="$abs"
    export EDGEFUSE_KERNEL_CACHE="$abs/kernel-cache"
    # A CUDA test that cannot open the GPU fails rather than skipping.
    export EDGEFUSE_REQUIRE_GPU=1
    nvidia-smi -L | tee "$out/device.txt" || true
    local status=0
    # Runs per median (GPU_CHECK_ITERS=2 rehearses the script on the emulated GPU:
    # scripts/cuda-emu/fake-gpu.sh scripts/gpu-check.sh run), and the shorter runs' shares of it.
    local iters=${GPU_CHECK_ITERS:-2000}
    [[ $iters =~ ^[1-9][0-9]*$ ]] || { echo "gpu-check run: GPU_CHECK_ITERS must be a positive integer, not '$iters'" >&2; exit 2; }
    export GPU_CHECK_ITERS=$iters
    local iters_profile=$(( iters / 10 > 0 ? iters / 10 : 1 )) iters_warm=$(( iters / 100 > 0 ? iters / 100 : 1 ))
    echo "== CUDA unit tests (each op against the CPU kernel, NVRTC for sm_72/87/90 and this card)"
    if [ -z "${SKIP_UNIT:-}" ]; then
        "$D/bin/runtime-tests" cuda:: --test-threads=1 --nocapture 2>&1 | tee "$out/runtime-tests.log" || status=1
    fi
    echo "== the seven reference models on the GPU against the refs"
    # shellcheck disable=SC2086 # GPU_CHECK_MODELS: test name filters, split on purpose
    "$D/bin/cuda_models" --test-threads=1 --nocapture ${GPU_CHECK_MODELS:-} 2>&1 | tee "$out/cuda-models.log" || status=1
    echo "== edgefuse bench --backend cuda"
    : > "$out/bench.jsonl"
    for m in $MODELS; do
        for p in fp32 fp16; do
            local f="$D/bench/$m.$p.efm"
            [ -f "$f" ] || f="$D/models/$m.$p.efm"
            [ -f "$f" ] || continue
            # Where each node ran and in which precision, for the record.
            "$D/bin/edgefuse" inspect "$f" --backend cuda > "$out/inspect-$m-$p.txt" 2>&1 || true
            # Load phases and per-node GPU time (node by node, with events).
            "$D/bin/edgefuse" bench "$f" --backend cuda --iters "$iters_profile" --profile > "$out/profile-$m-$p.txt" 2>&1 || true
            # Once to fill the kernel cache, then the measured run (load to first result warm).
            "$D/bin/edgefuse" bench "$f" --backend cuda --iters "$iters_warm" --json >/dev/null 2>&1 || true
            if line=$("$D/bin/edgefuse" bench "$f" --backend cuda --iters "$iters" --json 2>"$out/bench-$m-$p.err"); then
                echo "$line" | python3 -c "import json,sys; j=json.load(sys.stdin); j['case']={'model':'$m','precision':'$p'}; print(json.dumps(j))" >> "$out/bench.jsonl"
            else
                echo "{\"case\": {\"model\": \"$m\", \"precision\": \"$p\"}, \"error\": $(head -c 200 "$out/bench-$m-$p.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >> "$out/bench.jsonl"
                status=1
            fi
        done
    done
    # What the fusions (runtime/src/cuda/fuse.rs) gain, fused and unfused alternating, 3 each.
    echo "== fused against unfused (bench --no-fuse), medians of $iters, alternating"
    for c in seed_cnn_mnist.fp32 seed_cnn_mnist.fp16 seed_lstm_textgen.fp32 efficientnet_lite0.fp16 efficientnet_lite0.fp32 mobilenet_v2_int8_qdq.fp32; do
        local f="$D/bench/$c.efm"
        [ -f "$f" ] || f="$D/models/$c.efm"
        [ -f "$f" ] || continue
        local fused="" unfused=""
        for _ in 1 2 3; do
            fused+="$("$D/bin/edgefuse" bench "$f" --backend cuda --iters "$iters" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' || echo nan) "
            unfused+="$("$D/bin/edgefuse" bench "$f" --backend cuda --iters "$iters" --json --no-fuse 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' || echo nan) "
        done
        echo "$c fused: $fused ms; unfused: $unfused ms" | tee -a "$out/fusion.txt"
    done
    # Each rewrite's share in EfficientNet-Lite0 fp16 (EDGEFUSE_CUDA_SKIP, runtime/src/cuda/fuse.rs):
    # all on, then each left out, alternating, 3 rounds.
    local f="$D/bench/efficientnet_lite0.fp16.efm"
    [ -f "$f" ] || f="$D/models/efficientnet_lite0.fp16.efm"
    if [ -f "$f" ]; then
        echo "== EfficientNet-Lite0 fp16, each rewrite left out (EDGEFUSE_CUDA_SKIP), medians of $iters"
        declare -A skip_ms=()
        local skips="none carry epilogues narrow host-casts absorb"
        for _ in 1 2 3; do
            for s in $skips; do
                skip_ms[$s]+="$(EDGEFUSE_CUDA_SKIP=$s "$D/bin/edgefuse" bench "$f" --backend cuda --iters "$iters" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' || echo nan) "
            done
        done
        for s in $skips; do
            echo "efficientnet_lite0.fp16 without $s: ${skip_ms[$s]}ms" | tee -a "$out/fusion.txt"
        done
    fi
    echo "== PyTorch on the same card"
    # PyTorch brings its own cuDNN: not the system one our LD_LIBRARY_PATH points at.
    if [ -z "${SKIP_TORCH:-}" ]; then
        env -u LD_LIBRARY_PATH python3 scripts/gpu/torch_bench.py --iters "$iters" > "$out/torch.jsonl" 2>"$out/torch.err" || status=1
    else
        : > "$out/torch.jsonl"
    fi
    python3 scripts/gpu/table.py "$out/bench.jsonl" "$out/torch.jsonl" | tee "$out/table.md"
    if [ -s "$out/fusion.txt" ]; then
        { echo; echo "fused against unfused (ms, three alternating runs each):"; cat "$out/fusion.txt"; } >> "$out/table.md"
    fi
    # quantize_dynamic models: equal to onnxruntime's outputs, then their latency.
    if [ -d "$D/dynq" ]; then
        # Python without the CUDA library path (it can bind another libpython: numpy went missing
        # on a rehearsal); the edgefuse it runs gets the path back.
        EDGEFUSE_CHILD_LD_LIBRARY_PATH="$LD_LIBRARY_PATH" env -u LD_LIBRARY_PATH \
            python3 scripts/gpu/dynamic_models.py check "$D/dynq" "$D/bin/edgefuse" "$out" | tee -a "$out/table.md" || status=1
    fi
    # The camera preprocessing kernel (issue 4: <= 0.03 ms on the H100, equal to the CPU path).
    { echo; grep -h "gpu preprocess" "$out/runtime-tests.log" || echo "gpu preprocess: no timing (test failed or skipped)"; } | tee -a "$out/table.md"
    return $status
}

# The models `prepare` could not fit, fp32, each with the executables in a carry of its own
# size (ddddocr: 51 MiB + 5 MiB of executables).
prepare_large() {
    local shared=${EDGEFUSE_SHARED:-../shared}/models
    local L=carry/gpu-check-large
    [ -d carry/gpu-check/bin ] || { echo "gpu-check prepare-large: run 'prepare' first" >&2; exit 1; }
    rm -rf "$L" && mkdir -p "$L"/{models,refs}
    cp -r carry/gpu-check/bin "$L/"
    for m in ddddocr_crnn; do
        cp -r "$shared/refs/$m" "$L/refs/"
        # shellcheck disable=SC2046
        target/release/edgefuse.host compile "$shared/$m.onnx" -o "$L/models/$m.fp32.efm" \
            $(shapes "$shared/refs/$m/refs.json" full) >/dev/null
    done
    { echo "# gpu-check-large carry, prepared $(date -u +%FT%TZ) at $(git rev-parse --short HEAD)"
      (cd "$L" && find . -type f | sort | xargs ls -l | awk '{print $5, $9}'); } > "$L/MANIFEST"
    du -sh "$L"
}

case "${1:-}" in
    prepare) prepare ;;
    prepare-large) prepare_large ;;
    run) run ;;
    *) echo "usage: $0 prepare|prepare-large|run" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The GPU measurements in one run, on a machine with an NVIDIA GPU: the CUDA backend checked
# against the CPU (seeds and training losses), then training steps/s and the reference sampling
# trajectory on the GPU, side by side with the CPU (burn-flex, the host path) and PyTorch (CUDA
# and CPU), one JSON line per measurement in one results file.
#
#   bash benches/gpu/run.sh [--bin PREBUILT_DIFF4STEER_PEERS] [--out FILE] [--quick]
#
# Without --bin it builds `diff4steer-peers` with `--features cuda` (cargo needed); with --bin it
# uses a binary built elsewhere (a GPU machine without a Rust toolchain). PyTorch is taken from
# $PYTHON (default python3); its rows are skipped when it cannot be imported. It exits 2 with a
# message when no NVIDIA GPU is present, and non-zero when the CUDA backend disagrees with the CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."

BIN=""
OUT="results/gpu/results.jsonl"
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        *) echo "benches/gpu/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "benches/gpu/run.sh: no NVIDIA GPU here (nvidia-smi finds none); nothing was measured" >&2
    exit 2
fi
if [ -z "$BIN" ]; then
    cargo build --release -p diff4steer-benches --features cuda --bin diff4steer-peers || exit 1
    BIN=target/release/diff4steer-peers
fi
PY="${PYTHON:-python3}"
TORCH=1
"$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || TORCH=0

mkdir -p "$(dirname "$OUT")"
TMP="$OUT.tmp"
: > "$TMP"
FAILED=0
# Runs a command that prints one JSON line; a failure is recorded as a line too.
record() {
    local line
    if line=$("$@" 2>/tmp/gpu-run.err | tail -n 1) && [ -n "$line" ]; then
        echo "$line" | tee -a "$TMP"
    else
        FAILED=1
        local why
        why=$(tail -n 3 /tmp/gpu-run.err | tr '\n"\\' '   ')
        echo "{\"what\":\"failed\",\"command\":\"$*\",\"error\":\"$why\"}" | tee -a "$TMP"
    fi
}

GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)
echo "{\"what\":\"machine\",\"gpu\":\"$GPU\",\"cpus\":$(nproc),\"date\":\"$(date -u +%FT%TZ)\"}" | tee -a "$TMP"

# 1. Conformance: the CUDA backend against the CPU host path and burn-flex.
record "$BIN" backend-check --backend cuda --width 256 --depth 3
CHECK_OK=$(tail -n 1 "$TMP" | grep -c '"ok":true')

# 2. Training steps/s: 512×4 and 256×3, batch 256 and 1024.
GPU_STEPS=300; CPU_STEPS=30
[ "$QUICK" = 1 ] && GPU_STEPS=100 && CPU_STEPS=10
for size in "512 4" "256 3"; do
    set -- $size
    for batch in 256 1024; do
        record "$BIN" train-speed --backend cuda --width "$1" --depth "$2" --batch "$batch" --steps "$GPU_STEPS" --warmup 20
        [ "$TORCH" = 1 ] && record "$PY" benches/peers/torch_prior.py train --device cuda --width "$1" --depth "$2" --batch "$batch" --steps "$GPU_STEPS" --warmup 20
        record "$BIN" train-speed --backend cpu --width "$1" --depth "$2" --batch "$batch" --steps "$CPU_STEPS" --warmup 3
        [ "$TORCH" = 1 ] && record "$PY" benches/peers/torch_prior.py train --device cpu --width "$1" --depth "$2" --batch "$batch" --steps "$CPU_STEPS" --warmup 3
    done
done

# 3. The reference trajectory (512×4, 32 seeds, CFG, Heun 16 = 31 evaluations), one query and 64.
record "$BIN" sample-speed --backend cuda --repeats 10
record "$BIN" sample-speed --backend host --repeats 5
[ "$TORCH" = 1 ] && record "$PY" benches/peers/torch_prior.py sample --device cuda --repeats 10

mv "$TMP" "$OUT"
echo "benches/gpu/run.sh: results in $OUT"
if [ "$CHECK_OK" != 1 ]; then
    echo "benches/gpu/run.sh: the CUDA backend check failed (see the check line)" >&2
    exit 1
fi
[ "$FAILED" = 0 ] || { echo "benches/gpu/run.sh: some measurements failed (see the failed lines)" >&2; exit 1; }

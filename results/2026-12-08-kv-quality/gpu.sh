#!/usr/bin/env bash
# Issue 22, item 1 on the lent GPU machine: `mlxbench quality` for both engines on the
# Llama-3.2-1B shape (4-bit, synthetic weights: nothing can be downloaded there, and the real
# SmolLM2 directory is too big to carry). Random weights say little about quality; what this
# shows is that the command runs on CUDA end to end, and how MLX 0.32.2's CUDA backend answers
# kv 8 and 4 (PLATFORM.md: no quantized-KV attention for head_dim 64): recorded `unsupported`,
# the plain and rotating rows measured. The CPU table on the real model is in the closing note.
# From the repo root, .gpu/env.sh and .gpu/pyenv.sh sourced, the release binary at $MLXBENCH:
#   bash results/2026-12-08-kv-quality/gpu.sh            # about 2-3 min on an H100
# Overrides (the CPU check of this script):
#   MLXBENCH=target/debug/mlxbench OUT=/tmp/o PRESET=tiny SYNTH="--dtype float32" DEVICE=cpu \
#   DEPTHS=16,48 N_SCORE=8 N_GEN=8 MAX_KV=32 bash results/2026-12-08-kv-quality/gpu.sh
set -u
MLXBENCH=${MLXBENCH:-.gpu/bin/mlxbench}
PRESET=${PRESET:-llama-3.2-1b}
SYNTH=${SYNTH:-}
DEVICE=${DEVICE:-gpu}
DEPTHS=${DEPTHS:-512,2048}
N_SCORE=${N_SCORE:-64}
N_GEN=${N_GEN:-32}
MAX_KV=${MAX_KV:-256}
PYTHON=${PYTHON:-python3}
out=${OUT:-/tmp}/kv-quality
mkdir -p "$out" || exit 1
exec > >(tee -a "$out/gpu.log") 2>&1
start=$(date +%s)
stamp() { echo "--- $(( $(date +%s) - start )) s: $*"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$MLXBENCH" info --device "$DEVICE" || exit 1
model=${MODELS:-/tmp/models}/$PRESET
stamp "synth $PRESET 4-bit -> $model"
[ -f "$model/config.json" ] || "$MLXBENCH" synth --preset "$PRESET" --bits 4 $SYNTH --out "$model" --force || exit 1
# Warm up (CUDA JIT-compiles each shape on first use); quality has no timings, but the first
# use of each shape would otherwise sit inside the first setting.
stamp "warmup"
"$MLXBENCH" quality --model "$model" --kv-bits none --depth 16 --n-score 4 --n-generate 4 --device "$DEVICE" --no-save >/dev/null 2>&1
stamp "quality: kv none,8,4 and max-kv-size $MAX_KV at depths $DEPTHS, mlxbench and mlx-lm"
"$MLXBENCH" quality --model "$model" --engine mlxbench,mlx-lm --kv-bits 8,4 --max-kv-size "$MAX_KV" \
  --depth "$DEPTHS" --n-score "$N_SCORE" --n-generate "$N_GEN" --device "$DEVICE" --python "$PYTHON" \
  -o "$out" > "$out/quality-table.md"
echo "quality exit $? (1 when a setting is unsupported or failed)"
cat "$out/quality-table.md"
stamp "done"

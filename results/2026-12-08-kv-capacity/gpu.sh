#!/usr/bin/env bash
# Issue 22, items 3-5 on the lent GPU machine: the longest context per --kv-bits of the
# Llama-3.1-8B shape (4-bit, synthetic weights) under a stated budget, the memory breakdown at it,
# and decode speed at 4k and 32k context per kv-bits. MLX 0.32.2's CUDA backend has no quantized
# KV attention (PLATFORM.md): kv 8 and 4 are recorded as unsupported and the sweep goes on.
# From the repo root, .gpu/env.sh sourced, the release binary at $MLXBENCH:
#   bash results/2026-12-08-kv-capacity/gpu.sh            # about 6-7 min on an H100
# Overrides (the CPU check of this script):
#   MLXBENCH=target/release/mlxbench OUT=/tmp/o PRESET=tiny SYNTH="--dtype float32" DEVICE=cpu \
#   LIMIT=40MB START=256 STEP=256 MAX_N=8192 CONTEXTS=512,1024 N_GEN=16 MAX_TIME=60 \
#   bash results/2026-12-08-kv-capacity/gpu.sh
set -u
MLXBENCH=${MLXBENCH:-.gpu/bin/mlxbench}
PRESET=${PRESET:-llama-3.1-8b}
SYNTH=${SYNTH:-}
DEVICE=${DEVICE:-gpu}
KV=${KV:-none,8,4}
# The budget for MLX's peak (weights included): 12 GB keeps the kv-none search near 50k tokens,
# about 10 probes, inside MAX_TIME (seconds per kv setting).
LIMIT=${LIMIT:-12GB}
START=${START:-4096}
STEP=${STEP:-2048}
MAX_N=${MAX_N:-131072}
MAX_TIME=${MAX_TIME:-200}
CONTEXTS=${CONTEXTS:-4096,32768}
N_GEN=${N_GEN:-64}
REPEATS=${REPEATS:-3}
out=${OUT:-/tmp}/kv-capacity
mkdir -p "$out" || exit 1
exec > >(tee -a "$out/gpu.log") 2>&1
start=$(date +%s)
stamp() { echo "--- $(( $(date +%s) - start )) s: $*"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
"$MLXBENCH" info --device "$DEVICE" || exit 1
model=${MODELS:-/tmp/models}/$PRESET
stamp "synth $PRESET 4-bit -> $model"
[ -f "$model/config.json" ] || "$MLXBENCH" synth --preset "$PRESET" --bits 4 $SYNTH --out "$model" --force || exit 1
# Warm up (CUDA JIT-compiles each shape on first use); its numbers are not kept.
stamp "warmup"
"$MLXBENCH" run --model "$model" -p 512 -n 16 --repeats 1 --warmup 1 --device "$DEVICE" --no-save >/dev/null 2>&1
stamp "capacity: kv $KV under $LIMIT, at most $MAX_TIME s per setting"
"$MLXBENCH" capacity --model "$model" --kv-bits "$KV" --memory-limit "$LIMIT" --start "$START" --step "$STEP" \
  --max-n-prompt "$MAX_N" --max-time "$MAX_TIME" --device "$DEVICE" -o "$out/capacity.json" > "$out/capacity.md"
echo "capacity exit $?"
cat "$out/capacity.md"
stamp "decode at $CONTEXTS context per kv setting"
"$MLXBENCH" run --model "$model" -p "$CONTEXTS" -n "$N_GEN" --kv-bits "$KV" --repeats "$REPEATS" --warmup 1 \
  --device "$DEVICE" -o "$out/decode.json" > "$out/decode.md"
echo "run exit $? (1 when a setting is unsupported)"
cat "$out/decode.md"
stamp "combined table"
"$MLXBENCH" report "$out/decode.json" "$out/capacity.json" --kv-table > "$out/kv-table.md" && cat "$out/kv-table.md"
"$MLXBENCH" report "$out/decode.json" "$out/capacity.json" -o "$out/report.html" && echo "report: $out/report.html"
stamp "done"

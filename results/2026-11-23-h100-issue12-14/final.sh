#!/usr/bin/env bash
# Issues 12 and 14 on the GPU: energy per token (NVML) of a 1B-shape 4-bit model, and a serve
# sweep against launched mlx_lm.server instances (decode concurrency 8,32 x concurrency 1,8,32).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/final.log") 2>&1
source .gpu/env.sh && source .gpu/pyenv.sh || exit 1
for f in .gpu/bin/*.xz; do xz -d -k -f "$f"; done; chmod +x .gpu/bin/*
B=.gpu/bin/mlxbench
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv
t synth; $B synth --preset llama-3.2-1b --bits 4 --out /tmp/l1b --force | tail -1
t energy
timeout 120 $B run --model /tmp/l1b -p 512 -n 256 --repeats 5 --warmup 1 --device gpu -o "$OUT/energy.json" > "$OUT/energy.md"; cat "$OUT/energy.md"
python3 - "$OUT/energy.json" <<'PY'
import json, sys, statistics
r = json.load(open(sys.argv[1]))["records"][0]
for i, t in enumerate(r["trials"]):
    g = t.get("gpu") or {}
    print(f"trial {i}: {g.get('energy_j')} J, {g.get('mean_power_w')} W, SM {g.get('sm_clock_mhz')} MHz, {g.get('temperature_c')} C, util {g.get('utilisation_pct')}%, throttle {g.get('throttle_reasons')}, J/token {t.get('joules_per_token')}")
s = r["summary"]["joules_per_token"]
print("ENERGY PER TOKEN (median over trials):", s and s["median"], "J; gen t/s median", r["summary"]["generation_tps"]["median"])
PY
t serve
export MLXBENCH_PYTHON=python3
timeout 330 $B serve --launch mlx-lm --model /tmp/l1b --decode-concurrency 8,32 --concurrency 1,8,32 \
  --num-requests 32 --warmup 2 --input-len 128 --output-len 128 --ready-timeout 120 --deadline 300 \
  --slo ttft=500ms,tpot=50ms -o "$OUT/serve.json" > "$OUT/serve.md"; echo "serve rc=$?"; cat "$OUT/serve.md"
tar czf "$OUT/serve-logs.tgz" -C "$OUT" serve-logs 2>/dev/null; rm -rf "$OUT/serve-logs"
t done

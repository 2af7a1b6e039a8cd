#!/usr/bin/env bash
# On the lent GPU machine, from the checkout root: sets up MLX's CUDA runtime and Apple's Python
# mlx/mlx-lm (../shared/gpu: .gpu/env.sh, .gpu/pyenv.sh), unpacks .gpu/bin/mlxbench.xz, then runs
# the GPU script of each topic named, results/2026-12-08-<topic>/gpu.sh, its output under
# $OUT/<topic>/ and its log in $OUT/<topic>.log.
#   bash results/2026-12-08-gpu/run.sh speculative decode-host serve-workloads kv-capacity kv-quality
set -u
source .gpu/env.sh && source .gpu/pyenv.sh || exit 1
for f in .gpu/bin/*.xz; do [ -e "$f" ] && [ ! -x "${f%.xz}" ] && xz -d -k -f "$f"; done
chmod +x .gpu/bin/* 2>/dev/null
export MLXBENCH=${MLXBENCH:-$PWD/.gpu/bin/mlxbench} OUT=${OUT:-/tmp/out}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
for topic in "$@"; do
  start=$(date +%s)
  echo "=== $topic"
  bash "results/2026-12-08-$topic/gpu.sh" > "$OUT/$topic.log" 2>&1
  echo "=== $topic: exit $? after $(( $(date +%s) - start )) s"
  tail -n 60 "$OUT/$topic.log"
done

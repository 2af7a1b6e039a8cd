#!/usr/bin/env bash
# Issue 13 on the GPU machine: the two mixture-of-experts presets, 4-bit, our engine beside
# mlx-lm 0.32.0 (0.32.1+ pass global_scale to gather_qmm, which MLX 0.32.2 lacks) in one
# `mlxbench run --engine mlxbench,mlx-lm`: decode t/s with its interval, the ratio, peak memory,
# parameters total/active and the bandwidth of what a token reads. Qwen3-30B-A3B whole (17 GB);
# Mixtral-8x7B with MIXTRAL_LAYERS of its 32 layers (labelled so), as disk and time allow.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/moe.log") 2>&1
source .gpu/env.sh && source .gpu/pyenv.sh || exit 1
site=${MLX_GPU_RUNTIME:-/tmp/mlx-gpu}/site-moe
[ -d "$site/mlx_lm" ] || python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .gpu/whl-moe/mlx_lm-0.32.0-*.whl
export PYTHONPATH="$site:$PYTHONPATH"
python3 -c "import mlx_lm, mlx.core as mx; print('reference mlx-lm', mlx_lm.__version__, 'MLX', mx.__version__)"
for f in .gpu/bin/*.xz; do [ -e "$f" ] && xz -d -k -f "$f"; done; chmod +x .gpu/bin/* 2>/dev/null
B=.gpu/bin/mlxbench; M=/tmp/moe; mkdir -p $M
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
RUN="-p 512 -n 128 --engine mlxbench,mlx-lm --python python3 --repeats auto --target-ci 3 --max-time ${MAX_TIME:-40} --warmup 1 --device gpu"
t "qwen3-30b-a3b synth"
[ -f $M/qwen3-30b-a3b/config.json ] || $B synth --preset qwen3-30b-a3b --bits 4 --out $M/qwen3-30b-a3b --force | tail -1
t "qwen3-30b-a3b run"
timeout 240 $B run --model $M/qwen3-30b-a3b $RUN --output "$OUT/qwen3-30b-a3b.json" > "$OUT/qwen3-30b-a3b.md"; cat "$OUT/qwen3-30b-a3b.md"
rm -rf $M/qwen3-30b-a3b
L=${MIXTRAL_LAYERS:-16}
name=mixtral-8x7b; [ "$L" = 32 ] || name=mixtral-8x7b-${L}of32
t "$name synth"
[ -f $M/$name/config.json ] || $B synth --preset mixtral-8x7b --set num_hidden_layers=$L --bits 4 --out $M/$name --force | tail -1
t "$name run"
timeout 240 $B run --model $M/$name $RUN --output "$OUT/$name.json" > "$OUT/$name.md"; cat "$OUT/$name.md"
rm -rf $M/$name
t "done"

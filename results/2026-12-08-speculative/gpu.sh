#!/usr/bin/env bash
# Speculative decoding measured (issue 23), on the lent GPU machine from the checkout root, with
# .gpu/env.sh and .gpu/pyenv.sh sourced by the caller. One call:
#   1. a Llama-3.1-8B-shape target with a Llama-3.2-1B-shape draft (both vocabulary 128256, 4-bit,
#      random weights: acceptance near zero), k = 2,4,8, on mlxbench's engine and mlx-lm's own
#      speculative path, each beside the same setting without a draft (trials interleaved):
#      acceptance, accepted length, draft share, speed-up [95%], verify-cost curve, prediction;
#   2. the target as its own draft (every proposal accepted): the upper bound of the speed-up.
# Writes $OUT/speculative/{draft,self}.{json,md}, report.html and gpu.log.
# Bound: <= 360 s on an H100 (synth of both shapes ~60 s, run 1 ~150 s, run 2 ~90 s).
# On the CPU, to see it work end to end (about 2 minutes with a release build):
#   OUT=/tmp/spec MLXBENCH=target/release/mlxbench DEVICE=cpu TARGET_PRESET=tiny DRAFT_PRESET=tiny \
#     DTYPE=float32 P=32 N=16 REPEATS=2 ENGINES=mlxbench,mlx-lm \
#     MLXBENCH_PYTHON=/work/main/target/pyref-0.32.4/bin/python bash results/2026-12-08-speculative/gpu.sh
set -u
MLXBENCH=${MLXBENCH:-.gpu/bin/mlxbench}
out=${OUT:-/tmp}/speculative
mkdir -p "$out"
exec > >(tee -a "$out/gpu.log") 2>&1
TARGET_PRESET=${TARGET_PRESET:-llama-3.1-8b}
DRAFT_PRESET=${DRAFT_PRESET:-llama-3.2-1b}
DTYPE=${DTYPE:-bfloat16}
K=${K:-2,4,8}
P=${P:-512}
N=${N:-128}
REPEATS=${REPEATS:-5}
DEVICE=${DEVICE:-gpu}
ENGINES=${ENGINES:-mlxbench,mlx-lm}
models=${MODELS:-/tmp/speculative-models}
start=$(date +%s)
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
"$MLXBENCH" info --device "$DEVICE" || exit 1
# Different seeds: the draft must not be the target's weights even when both presets are tiny.
# Two presets of the default dtype share the 4-bit models the other GPU scripts write under
# /tmp/models/<preset> (one synth of the 8B per machine), unless MODELS is given.
target_dir=$models/target; draft_dir=$models/draft; target_seed=3; draft_seed=5
if [ -z "${MODELS:-}" ] && [ "$TARGET_PRESET" != "$DRAFT_PRESET" ] && [ "$DTYPE" = bfloat16 ]; then
  target_dir=/tmp/models/$TARGET_PRESET; draft_dir=/tmp/models/$DRAFT_PRESET; target_seed=0; draft_seed=0
fi
[ -f "$target_dir/config.json" ] || "$MLXBENCH" synth --preset "$TARGET_PRESET" --bits 4 --dtype "$DTYPE" --seed $target_seed --out "$target_dir" --force >/dev/null || exit 1
[ -f "$draft_dir/config.json" ] || "$MLXBENCH" synth --preset "$DRAFT_PRESET" --bits 4 --dtype "$DTYPE" --seed $draft_seed --out "$draft_dir" --force >/dev/null || exit 1
grep -h '"vocab_size"' "$target_dir/config.json" "$draft_dir/config.json"
echo "synth done after $(( $(date +%s) - start )) s"

for pair in "draft:$draft_dir" "self:$target_dir"; do
  name=${pair%%:*}; draft=${pair#*:}
  echo "=== $name: target $TARGET_PRESET, draft $draft, k $K, engines $ENGINES"
  rm -f "$out/$name.json"
  "$MLXBENCH" run --model "$target_dir" --draft-model "$draft" --num-draft-tokens "$K" \
    --engine "$ENGINES" -p "$P" -n "$N" --repeats "$REPEATS" --warmup 1 --device "$DEVICE" \
    -o "$out/$name.json" > "$out/$name.md"
  echo "exit $?"
  cat "$out/$name.md"
  echo "$name done after $(( $(date +%s) - start )) s"
done
"$MLXBENCH" report "$out/draft.json" "$out/self.json" -o "$out/report.html"
echo "total $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# On the lent GPU machine, from the checkout root, after the four libmlx pieces are staged (see
# ../../../shared/gpu/README.md): MLX 0.32.2 against 0.32.4 (CUDA wheels mlx-cuda-13), two builds
# of one mlxbench commit, each run with its own libmlx through a wrapper, compared with
# `compare --interleave` (alternating blocks in one call) on 4-bit Llama-3.2-1B and Llama-3.1-8B
# shapes; and the parity tests with both sides on the GPU (MLXBENCH_TEST_DEVICE=gpu).
#   STEP=parity|compare PRESETS="llama-3.2-1b llama-3.1-8b" BLOCKS=3 bash results/.../gpu.sh
# Binaries in .gpu/bin (xz): mlxbench-0.32.2, mlxbench-0.32.4, parity-0.32.4 (the test binary).
# portable: linux-only (the NVIDIA machine)
set -u
out=${OUT:-/tmp}; exec > >(tee -a "$out/gpu.log") 2>&1
root=$PWD
for f in .gpu/bin/*.xz; do [ -e "$f" ] && xz -d -k -f "$f"; done; chmod +x .gpu/bin/*
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv,noheader
step=${STEP:-compare}
if [ "$step" = parity ]; then
  # The test binary reads its sources' paths as built (/work/main): point them at this checkout.
  [ -e /work/main ] || { mkdir -p /work && ln -s "$root" /work/main; }
  (
    GPU_DIR=.gpu-0.32.4; source .gpu-0.32.4/env.sh && source .gpu-0.32.4/pyenv.sh || exit 1
    python3 -c 'import mlx.core as mx; print("python mlx", mx.__version__, mx.default_device())'
    export MLXBENCH_TEST_DEVICE=gpu MLXBENCH_REFERENCE_PYTHON="$(command -v python3)"
    # Ours cached against uncached, with MLX's TF32 float32 matmuls off and on (the default).
    [ -n "${SKIP_TF32:-}" ] || MLX_ENABLE_TF32=0 .gpu/bin/parity-0.32.4 cache_matches_full_forward --nocapture 2>&1 | grep -E "^cache:" | sed 's/$/ tf32=off/'
    .gpu/bin/parity-0.32.4 --test-threads ${THREADS:-6} --nocapture ${FILTER:-} 2>&1 |
      tee "$out/parity-gpu.log" | grep -E "^parity:|^graph:|^cache:|test result|FAILED|panicked" | head -400
  )
  exit 0
fi

lib_path() { (GPU_DIR=$1; [ "$1" = .gpu ] && unset GPU_DIR; source "$1/env.sh" >/dev/null || exit 1; echo "$LD_LIBRARY_PATH"); }
L2=$(lib_path .gpu) || exit 1; L4=$(lib_path .gpu-0.32.4) || exit 1
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
for v in 0.32.2 0.32.4; do
  l=$L2; [ $v = 0.32.4 ] && l=$L4
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$l" "$root/.gpu/bin/mlxbench-$v" > /tmp/mlx-$v
  chmod +x /tmp/mlx-$v
  /tmp/mlx-$v info --device gpu || exit 1
done
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,driver_version --format=csv,noheader
PRESETS=${PRESETS:-"llama-3.2-1b llama-3.1-8b"}; BLOCKS=${BLOCKS:-3}
for p in $PRESETS; do
  [ -f /tmp/models/$p/config.json ] || /tmp/mlx-0.32.4 synth --preset $p --bits 4 --out /tmp/models/$p --force >/dev/null || exit 1
  echo "=== $p: compare --interleave MLX 0.32.2 -> 0.32.4, $BLOCKS blocks each"
  /tmp/mlx-0.32.4 compare --interleave /tmp/mlx-0.32.2 /tmp/mlx-0.32.4 --blocks "$BLOCKS" --format json -- \
    --model /tmp/models/$p -p 512 -n 128 --repeats 5 --warmup 1 --device gpu > "$out/compare-$p.json"
  echo "exit $?"
  # Each version's own numbers with their intervals (8 trials: the median's 95% interval), both
  # appended to one file that `report`/`export` keep apart by MLX version.
  for v in 0.32.2 0.32.4; do
    /tmp/mlx-$v run --model /tmp/models/$p -p 512 -n 128 --repeats 8 --warmup 1 --device gpu -o "$out/runs-$p.json" 2>&1 | grep -E '^\||^#|MLX'
  done
done

#!/usr/bin/env bash
# `mlxbench serve` workloads against mlx_lm.server on the Llama-3.2-1B shape, 4-bit (issue 25):
# an 8k shared prefix cold (cache-bust) vs warm, a 5-turn chat at 1, 8 and 32 conversations, the
# SLO search over concurrency with its probed points, and `mlxbench report` pages with the
# throughput-vs-latency (Pareto) chart. The server is started here on 127.0.0.1 and stopped at
# the end (and on error or Ctrl-C). Bound: about 300 s on an H100 (400 s at most).
#   OUT=/tmp/out bash results/2026-12-08-serve-workloads/gpu.sh
# On a CPU (tiny float32 model, small lengths; MLX's CPU kernels are slow on bfloat16):
#   PRESET=tiny SYNTH_ARGS="--dtype float32" PREFIX=1024 P=16 N=8 NREQ=8 CONCS=1,2,4 TURN_REQ=10 \
#     SEARCH_MAX=8 SLO='ttft_p90<=1s' MODEL_DIR=/tmp/sw-tiny MLXBENCH=target/debug/mlxbench \
#     PYTHON=$MLXBENCH_REFERENCE_PYTHON OUT=/tmp/o bash results/2026-12-08-serve-workloads/gpu.sh
set -u
out=${OUT:-/tmp}/serve-workloads
mkdir -p "$out"
exec > >(tee -a "$out/gpu.log") 2>&1
mlxbench=${MLXBENCH:-.gpu/bin/mlxbench}
[ -x "$mlxbench" ] || { [ -f "$mlxbench.xz" ] && xz -d -k -f "$mlxbench.xz" && chmod +x "$mlxbench"; }
python=${PYTHON:-python3}
preset=${PRESET:-llama-3.2-1b}
prefix=${PREFIX:-8192}
p=${P:-128}
n=${N:-64}
nreq=${NREQ:-16}
concs=${CONCS:-1,8,32}
turn_req=${TURN_REQ:-40}
search_max=${SEARCH_MAX:-64}
slo=${SLO:-ttft_p90<=500ms,tpot_p90<=15ms}
port=${PORT:-18123}
model=${MODEL_DIR:-/tmp/models/$preset}
url=http://127.0.0.1:$port
started=$(date +%s)
stamp() { echo "--- $(( $(date +%s) - started )) s: $*"; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c 'import mlx.core as mx, mlx_lm; print("mlx", mx.__version__, mx.default_device(), "mlx-lm", mlx_lm.__version__)' || exit 1
# shellcheck disable=SC2086 # SYNTH_ARGS is a list of flags
[ -f "$model/config.json" ] || "$mlxbench" synth --preset "$preset" --bits 4 ${SYNTH_ARGS:-} --out "$model" --force >/dev/null || exit 1

# The server: mlx-lm's console script beside the Python, else the module; logs under $out.
server=$(dirname "$(command -v "$python")")/mlx_lm.server
if [ -x "$server" ]; then set -- "$server"; else set -- "$python" -m mlx_lm server; fi
"$@" --model "$model" --host 127.0.0.1 --port "$port" --prompt-cache-size 64 > "$out/server.log" 2>&1 &
server_pid=$!
stop() { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; }
trap stop EXIT
trap 'stop; exit 130' INT TERM
"$python" - "$url" <<'PY' || { echo "server did not start:"; tail -20 "$out/server.log"; exit 1; }
import sys, time, urllib.request
deadline = time.time() + 180
while time.time() < deadline:
    try:
        urllib.request.urlopen(sys.argv[1] + "/health", timeout=2).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.5)
sys.exit(1)
PY
stamp "server up (pid $server_pid)"

serve() { "$mlxbench" serve --url "$url" --tokenizer "$model" --request-timeout 120 --deadline 600 "$@"; }

# JIT warmup at the shapes timed below (CUDA kernels compile on first use of each shape).
serve --workload shared-prefix --prefix-tokens "$prefix" -p "$p" -n 16 --num-requests 2 --concurrency 1 --cache-mode bust --no-save >/dev/null
serve -p "$p" -n "$n" --concurrency 8 --num-requests 16 --no-save >/dev/null
stamp "warmed up"

# 1. An 8k shared prefix: cold (cache-bust: every prompt starts with a marker of its own) vs warm
# (the prefix sent once before the point), then as sent with 4 groups shared by 75% of requests.
for mode in bust warm; do
  serve --workload shared-prefix --prefix-tokens "$prefix" -p "$p" -n 32 --num-requests "$nreq" --concurrency 1 --cache-mode "$mode" -o "$out/prefix.json"
done
serve --workload shared-prefix --prefix-tokens "$prefix" --prefix-groups 4 --prefix-share 0.75 -p "$p" -n 32 --num-requests "$nreq" --concurrency 4 -o "$out/prefix.json"
stamp "shared prefix done"

# 2. A 5-turn chat (each turn re-sends the whole history) at 1, 8 and 32 conversations at once.
serve --workload multi-turn --turns 5 -p "$p" -n "$n" --num-requests "$turn_req" --concurrency "$concs" -o "$out/multi-turn.json"
stamp "multi-turn done"

# 3. The highest concurrency meeting the SLO, every probed point recorded.
serve -p 512 -n "$n" --num-requests 32 --search concurrency --slo "$slo" --search-max "$search_max" -o "$out/search.json"
stamp "search done"

# 4. Report pages with the Pareto chart.
for f in prefix multi-turn search; do
  "$mlxbench" report "$out/$f.json" -o "$out/$f.html"
done
stamp "all done"

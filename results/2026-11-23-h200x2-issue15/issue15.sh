#!/usr/bin/env bash
# Issue 15 on 2 GPUs: tensor parallel over NCCL. A tiny model's greedy tokens at 1 and 2 ranks,
# then the Llama-3.1-8B shape (4-bit) at 1 and 2 ranks, two interleaved rounds, beside
# mlx_lm.benchmark at 1 and 2 ranks (mlx.launch --backend nccl).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/issue15.log") 2>&1
source .gpu/env.sh && source .gpu/pyenv.sh || exit 1
for f in .gpu/bin/*.xz; do xz -d -k -f "$f"; done; chmod +x .gpu/bin/*
B=.gpu/bin/mlxbench; export RUST_BACKTRACE=0
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi -L; env | grep -E "NCCL_NVLS|MULTICAST|NVSHMEM" 
t tiny parity
$B synth --preset tiny --arch llama --bits 4 --out /tmp/tiny --force >/dev/null
$B generate --model /tmp/tiny --prompt-tokens 24 --max-tokens 32 --json --logits --device gpu > /tmp/t1.json
timeout 120 $B launch -n 2 --backend nccl -- generate --model /tmp/tiny --prompt-tokens 24 --max-tokens 32 --json --logits --device gpu > /tmp/t2.json; echo "launch rc=$?"
python3 - <<'PY'
import json
a = json.load(open('/tmp/t1.json')); b = json.load(open('/tmp/t2.json'))
gap = max(abs(x - y) for x, y in zip(a['last_logits'], b['last_logits'])) / max(abs(x) for x in a['last_logits'])
print("TINY GPU PARITY: tokens identical:", a['generated_ids'] == b['generated_ids'], "relative logit gap:", gap)
PY
t synth 8b
cp /tmp/t1.json /tmp/t2.json "$OUT"/ 2>/dev/null
$B synth --preset llama-3.1-8b --bits 4 --out /tmp/l8b --force | tail -1
BENCH=$(python3 -c 'import mlx_lm.benchmark as b; print(b.__file__)')
ours1() { timeout 200 $B run --model /tmp/l8b -p 512 -n 128 --repeats 5 --warmup 1 --device gpu -o "$OUT/ours-1rank-$1.json" --format csv > /dev/null 2>"$OUT/err1-$1"; echo "ours 1 rank rc=$?"; }
ours2() { timeout 240 $B launch -n 2 --backend nccl -- run --model /tmp/l8b -p 512 -n 128 --repeats 5 --warmup 1 --device gpu -o "$OUT/ours-2rank-$1.json" --format csv > /dev/null 2>"$OUT/err2-$1"; echo "ours 2 ranks rc=$?"; tail -2 "$OUT/err2-$1"; }
peer1() { timeout 200 python3 "$BENCH" --model /tmp/l8b -p 512 -g 128 -n 5 2>&1 | grep -E "^Trial|^Averages" | sed 's/^/  mlx-lm 1 rank: /'; }
# The environment mlx.launch --backend nccl gives each rank on one host (its launcher failed here with
# "no CUDA-capable device" in round 1 of the first try, so the ranks are started by hand).
peer2() { for i in 1 0; do MLX_RANK=$i MLX_WORLD_SIZE=2 NCCL_HOST_IP=127.0.0.1 NCCL_PORT=23456 CUDA_VISIBLE_DEVICES=$i timeout 240 python3 "$BENCH" --model /tmp/l8b -p 512 -g 128 -n 5 > /tmp/peer2-$i.log 2>&1 & done; wait; grep -E "^Trial|^Averages|rror" /tmp/peer2-0.log | sed 's/^/  mlx-lm 2 ranks: /'; tail -3 /tmp/peer2-1.log | sed 's/^/  mlx-lm rank 1: /'; }
for r in 1 2; do
  t round $r
  if [ $r = 1 ]; then ours1 $r; ours2 $r; peer1; peer2; else peer2; peer1; ours2 $r; ours1 $r; fi
done
python3 - "$OUT" <<'PY'
import json, sys, glob
for f in sorted(glob.glob(sys.argv[1] + "/ours-*.json")):
    for r in json.load(open(f))["records"]:
        s = r.get("summary") or {}
        m = lambda k: (s.get(k) or {}).get("median", float("nan"))
        g = r.get("distributed") or {}
        print(f.split("/")[-1], r["status"], "gen t/s %.1f" % m("generation_tps"), "robust %.1f" % m("generation_tps_robust"),
              "prompt t/s %.0f" % m("prompt_tps"), "TTFT %.1f ms" % m("ttft_ms"), "peak GB %.3f" % (m("peak_memory_bytes") / 1e9),
              "ranks", g.get("size", 1), "per-rank peak GB", [round(p / 1e9, 3) for p in g.get("peak_memory_bytes", [])], (r.get("error") or "")[:200])
PY
t done
rm -f "$OUT"/.*.lock; (cd "$OUT" && tar czf issue15.tgz ours-*.json err* t1.json t2.json 2>/dev/null && rm -f ours-*.json err* t1.json t2.json)

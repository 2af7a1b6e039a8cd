#!/usr/bin/env bash
# Issue 24 on the lent GPU machine, from the checkout root (.gpu/env.sh and .gpu/pyenv.sh sourced
# by the caller; python3 is Apple's Python with mlx + mlx-lm): where a decode step's time goes.
# Interleaved in one call, ROUNDS back-to-back rounds (the order flips each round), per 4-bit shape:
#   A: mlxbench beside the mlx-lm engine (`run --engine mlxbench,mlx-lm`), batch 1 and 4
#      (mlx-lm's engine runs batch 1 only: its batch-4 point is recorded as refused);
#   B: mlxbench --compile (the compiled sampler), batch 1 and 4.
# Every record has the host share of a step (step_host_* / step_wait_* / step_host_share), the
# robust decode rate with its 95% interval, decode GB/s and % of the device's roofline.
# Writes $OUT/decode-host/: gpu.log (Markdown tables and ratio tables of every invocation),
# runs-<preset>-r<round>-<A|B>.json (the records), err-*.log, summary.md (one table of all).
#   bash results/2026-12-08-decode-host/gpu.sh
#   PRESETS=tiny P=16 G=8 REPEATS=3 DEVICE=cpu MLXBENCH=target/debug/mlxbench bash results/2026-12-08-decode-host/gpu.sh
# Bound: about 4-5.5 min on an H100 with the defaults (3 shapes, 2 rounds, 6 invocations a round,
# 6 trials per configuration: the fewest that give the median a 95% interval), synth included.
set -u
MLXBENCH=${MLXBENCH:-.gpu/bin/mlxbench}
PRESETS=${PRESETS:-"llama-3.2-1b qwen3-0.6b llama-3.1-8b"}
ROUNDS=${ROUNDS:-2}; P=${P:-512}; G=${G:-128}; REPEATS=${REPEATS:-6}; BATCH=${BATCH:-1,4}
DEVICE=${DEVICE:-gpu}; MODELS=${MODELS:-/tmp/models}
out=${OUT:-/tmp}/decode-host; mkdir -p "$out"
exec > >(tee -a "$out/gpu.log") 2>&1
[ -x "$MLXBENCH" ] || { [ -e "$MLXBENCH.xz" ] && xz -d -k -f "$MLXBENCH.xz" && chmod +x "$MLXBENCH"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
"$MLXBENCH" info --device "$DEVICE" || exit 1
python3 -c 'import mlx.core as mx, mlx_lm; print("python mlx", mx.__version__)' || exit 1
for p in $PRESETS; do
  [ -f "$MODELS/$p/config.json" ] || "$MLXBENCH" synth --preset "$p" --bits 4 --out "$MODELS/$p" --force >/dev/null || exit 1
done
start=$(date +%s)
# One invocation: $1 preset, $2 round, $3 variant (A: beside mlx-lm, B: --compile).
one() {
  local p=$1 r=$2 v=$3 args
  if [ "$v" = A ]; then args="--engine mlxbench,mlx-lm"; else args="--engine mlxbench --compile"; fi
  echo "-- round $r $p $v ($args) at $(( $(date +%s) - start )) s"
  "$MLXBENCH" run --model "$MODELS/$p" -p "$P" -n "$G" -b "$BATCH" --repeats "$REPEATS" --warmup 1 \
    --device "$DEVICE" $args -o "$out/runs-$p-r$r-$v.json" 2>"$out/err-$p-r$r-$v.log" | grep -vE '^\s*$' \
    || { echo "   exit $?:"; tail -5 "$out/err-$p-r$r-$v.log"; }
}
for r in $(seq 1 "$ROUNDS"); do
  echo "=== round $r"
  for p in $PRESETS; do
    if [ $((r % 2)) -eq 1 ]; then one "$p" "$r" A; one "$p" "$r" B; else one "$p" "$r" B; one "$p" "$r" A; fi
  done
done
echo "=== done in $(( $(date +%s) - start )) s"
python3 - "$out" $PRESETS <<'PY' | tee "$out/summary.md"
import glob, json, os, sys
out, presets = sys.argv[1], sys.argv[2:]
rows = {}
for path in sorted(glob.glob(os.path.join(out, "runs-*-r*-*.json"))):
    name = os.path.basename(path)[5:-5]
    preset, r, v = name.rsplit("-", 2)
    for rec in json.load(open(path))["records"]:
        s = rec.get("summary") or {}
        engine = rec["engine"] + ("+compile" if rec.get("compile") else "")
        rows[(preset, int(r[1:]), engine, rec["batch"])] = (rec, s)
def med(s, k):
    return (s.get(k) or {}).get("median")
def ci(s, k):
    return (s.get(k) or {}).get("median_ci95")
def f(x, spec):
    return "-" if x is None else format(x, spec)
print("| shape | round | engine | batch | status | decode t/s [95%] | step host (build) / wait ms | host share | GB/s | % roofline |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for key in sorted(rows, key=lambda k: (presets.index(k[0]) if k[0] in presets else 99, k[1], k[2], k[3])):
    rec, s = rows[key]
    d, c = med(s, "generation_tps_robust"), ci(s, "generation_tps_robust")
    iv = "" if not c else f" [{c[0]:.1f}, {c[1]:.1f}]"
    util = rec.get("bandwidth_utilisation")
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {rec['status'].split(':')[0]} | {f(d, '.1f')}{iv} | "
          f"{f(med(s, 'step_host_p50_ms'), '.3f')} ({f(med(s, 'step_build_p50_ms'), '.3f')}) / {f(med(s, 'step_wait_p50_ms'), '.3f')} | "
          f"{f(med(s, 'step_host_share'), '.2f')} | {f(rec.get('decode_gbps'), '.1f')} | {f(None if util is None else util * 100, '.1f')} |")
print()
print("Ratios of robust decode medians (interval: the ends of the two medians' 95% intervals, conservative):")
print()
print("| shape | round | batch | ours ÷ mlx-lm | compiled ÷ ours | ours round ÷ round 1 | compiled round ÷ round 1 |")
print("| --- | --- | --- | --- | --- | --- | --- |")
def ratio(a, b):
    if not a or not b: return "-"
    (ra, sa), (rb, sb) = a, b
    x, y = med(sa, "generation_tps_robust"), med(sb, "generation_tps_robust")
    if not x or not y: return "-"
    ca, cb = ci(sa, "generation_tps_robust"), ci(sb, "generation_tps_robust")
    iv = f" [{ca[0] / cb[1]:.3f}, {ca[1] / cb[0]:.3f}]" if ca and cb else ""
    return f"{x / y:.3f}{iv}"
for p in presets:
    rounds = sorted({k[1] for k in rows if k[0] == p})
    for r in rounds:
        for b in sorted({k[3] for k in rows if k[0] == p}):
            g = lambda e, rr=r: rows.get((p, rr, e, b))
            print(f"| {p} | {r} | {b} | {ratio(g('mlxbench'), g('mlx-lm'))} | {ratio(g('mlxbench+compile'), g('mlxbench'))} | "
                  f"{ratio(g('mlxbench'), g('mlxbench', rounds[0]))} | {ratio(g('mlxbench+compile'), g('mlxbench+compile', rounds[0]))} |")
PY

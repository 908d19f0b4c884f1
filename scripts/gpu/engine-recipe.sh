#!/usr/bin/env bash
# One recipe end to end on the GPU machine, three ways, one after the other on the same card: the
# toolworld-tiny LOOP recipe (configs/loop-toolworld-tiny.yaml: its warm start, then ITERATIONS
# iterations) with
#   tfjs      the tfjs webgpu learner and wasm workers (how the results of docs/results.md were made)
#   engine    horizon's engine learner and wasm workers
#   engine+   horizon's engine learner and workers decoding on the engine
# After `bash scripts/gpu-pack.sh` here, run there as   bash .gpu/boot.sh bash scripts/gpu/engine-recipe.sh
# Prints a table of wall times (warm start, RL, total) and final success rates; everything lands in
# $OUT/engine-recipe.tgz. EXTRA="--set sft.steps=20" and ITERATIONS shorten it (a smoke test).
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out" runs results
iterations=${ITERATIONS:-10}; workers=${WORKERS:-4}; limit=${LIMIT_S:-180}
cfg=configs/loop-toolworld-tiny.yaml
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee results/card.txt
declare -A variant=(
  [tfjs]="--set backend=webgpu --set workers.backend=wasm"
  [engine]="--set backend=engine --set workers.backend=wasm"
  [engine+]="--set backend=engine --set workers.backend=engine"
)
echo "| variant | warm start s | RL s | total wall s | success, first 3 iterations | success, last 3 iterations |" > results/recipe.md
echo "|---|---:|---:|---:|---:|---:|" >> results/recipe.md
for name in tfjs engine engine+; do
  start=$(date +%s)
  timeout "$limit" bash scripts/gpu-run.sh train $cfg --run-dir "runs/$name" --no-progress --no-dashboard \
    --set train.iterations=$iterations --set workers.count=$workers ${variant[$name]} ${EXTRA:-} > "results/$name-train.log" 2>&1
  wall=$(( $(date +%s) - start ))
  node -e '
    const fs = require("fs");
    const [dir, name, wall] = process.argv.slice(1);
    const rows = fs.readFileSync(dir + "/metrics.jsonl", "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const sft = rows.filter((r) => r.step === -1);
    const it = rows.filter((r) => r.step >= 1);
    const sftSec = sft.length ? (sft.at(-1).time - sft[0].time) / 1000 : 0;
    const rlSec = it.length ? it.at(-1)["time/elapsed_s"] : 0;
    const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
    const success = (xs) => (100 * mean(xs.map((r) => r["charts/success_rate"]))).toFixed(1) + "%";
    console.log(`| ${name} | ${sftSec.toFixed(1)} | ${rlSec.toFixed(1)} | ${wall} | ${success(it.slice(0, 3))} | ${success(it.slice(-3))} |`);
  ' "runs/$name" "$name" "$wall" >> results/recipe.md 2>> "results/$name-train.log" || echo "| $name | failed: see results/$name-train.log | | $wall | | |" >> results/recipe.md
done
cat results/recipe.md
grep -h "backend" results/*-train.log | head -6
for d in runs/*; do n=$(basename "$d"); cp "$d/metrics.jsonl" "results/$n-metrics.jsonl" 2>/dev/null; done
tar czf "$out/engine-recipe.tgz" results

#!/usr/bin/env bash
# Delethink vs LongCoT on the GPU machine, both runs at once (one GPU learner each, 6 wasm workers each on
# the host's CPU cores), then test-time scaling of both (horizon eval --chunks) on the training length and
# on problems twice as long. After `bash scripts/gpu-pack.sh` here, run there as
#   bash .gpu/boot.sh bash scripts/gpu/delethink.sh
# Everything lands in one archive, $OUT/delethink-results.tgz: training logs, metrics, reports, eval
# tables / JSON / SVG plots.
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out" runs results
limit=${LIMIT_S:-450}
common=(--no-progress --no-dashboard --set backend=webgpu --set workers.backend=wasm --set workers.count=6 ${EXTRA:-})
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee results/card.txt
start=$(date +%s)
for run in delethink longcot; do
  timeout "$limit" bash scripts/gpu-run.sh train configs/$run-sum.yaml --run-dir runs/$run "${common[@]}" > results/$run-train.log 2>&1 &
done
wait
echo "training wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
# Test-time scaling: chunk caps up to twice the training cap (I = 4) on the training length (12 digits),
# and up to three times on 24-digit problems (the solver's trace needs ~7 chunks).
for run in delethink longcot; do
  (bash scripts/gpu-run.sh eval runs/$run --checkpoint 0 --checkpoint last --tasks 128 --chunks 1..8 --backend webgpu --batch 64 \
      --json results/eval-$run-len12.json --plot results/eval-$run-len12.svg > results/eval-$run-len12.txt 2>&1
   bash scripts/gpu-run.sh eval runs/$run --checkpoint last --tasks 64 --chunks 1..12 --backend webgpu --batch 64 --no-baselines \
      --set env.options.length=24 --json results/eval-$run-len24.json --plot results/eval-$run-len24.svg > results/eval-$run-len24.txt 2>&1) &
done
wait
echo "total wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
for run in delethink longcot; do cp runs/$run/metrics.jsonl results/$run-metrics.jsonl; cp runs/$run/report.html results/$run-report.html 2>/dev/null; done
tar czf "$out/delethink-results.tgz" results
cat results/card.txt
grep -h -v 'operator()\|^Warning' results/*-train.log | grep -E 'sft step (1|[0-9]*00)/|completed|reward .* →|failed|Error' | tail -12
grep -h -A20 "^method" results/eval-*-len12.txt | grep -v "^eval:"

#!/usr/bin/env bash
# Delethink vs LongCoT on the GPU machine, both runs at once (one GPU learner each, 6 wasm workers each on
# the host's CPU cores), then test-time scaling of both (horizon eval --chunks) on the training length and
# on problems twice as long. After `bash scripts/gpu-pack.sh` here, run there as
#   bash .gpu/boot.sh bash scripts/gpu/delethink.sh
# Results in $OUT: *-train.log, eval-*.txt/json/svg, <run>-run.tgz (configs, metrics, reports,
# last checkpoint of each run).
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out" runs
limit=${LIMIT_S:-420}
common=(--no-progress --no-dashboard --set backend=webgpu --set workers.backend=wasm --set workers.count=6 ${EXTRA:-})
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/card.txt"
start=$(date +%s)
timeout "$limit" bash scripts/gpu-run.sh train configs/delethink-sum.yaml --run-dir runs/delethink "${common[@]}" > "$out/delethink-train.log" 2>&1 &
timeout "$limit" bash scripts/gpu-run.sh train configs/longcot-sum.yaml --run-dir runs/longcot "${common[@]}" > "$out/longcot-train.log" 2>&1 &
wait
echo "training wall $(( $(date +%s) - start )) s" | tee -a "$out/card.txt"
# Test-time scaling: chunk caps up to twice the training cap (I = 4), on the training length (12 digits)
# and on 24-digit problems whose solver trace needs ~7 chunks.
for run in delethink longcot; do
  (bash scripts/gpu-run.sh eval runs/$run --checkpoint 0 --checkpoint last --tasks 128 --chunks 1..8 --backend webgpu --batch 64 \
      --json "$out/eval-$run-len12.json" --plot "$out/eval-$run-len12.svg" > "$out/eval-$run-len12.txt" 2>&1
   bash scripts/gpu-run.sh eval runs/$run --checkpoint last --tasks 64 --chunks 1..12 --backend webgpu --batch 64 --no-baselines \
      --set env.options.length=24 --json "$out/eval-$run-len24.json" --plot "$out/eval-$run-len24.svg" > "$out/eval-$run-len24.txt" 2>&1) &
done
wait
echo "total wall $(( $(date +%s) - start )) s" | tee -a "$out/card.txt"
for run in delethink longcot; do
  last=$(ls -d runs/$run/checkpoints/iter-* | tail -1)
  tar czf "$out/$run-run.tgz" runs/$run/config.json runs/$run/metrics.jsonl runs/$run/report.html "$last" 2>/dev/null
done
grep -h -v 'operator()\|^Warning' "$out"/*-train.log | grep -E 'sft step (1|[0-9]*00)/|eval at|completed|reward .* →|failed|Error' | tail -30
ls -la "$out"

#!/usr/bin/env bash
# Second half of scripts/gpu/delethink.sh on the same (warm) machine: resume both runs from their last
# checkpoint (`horizon resume` from the run directory) for the RL iterations, then the same evaluations.
# All results in one archive: $OUT/delethink-results.tgz.
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out" results
limit=${LIMIT_S:-300}
start=$(date +%s)
for run in delethink longcot; do
  timeout "$limit" bash scripts/gpu-run.sh resume "$(cat runs/$run/job-id)" --run-dir runs/$run --workers 6 --no-progress --no-dashboard > results/$run-resume.log 2>&1 &
done
wait
echo "resume wall $(( $(date +%s) - start )) s" | tee results/wall.txt
for run in delethink longcot; do
  (bash scripts/gpu-run.sh eval runs/$run --checkpoint 0 --checkpoint last --tasks 128 --chunks 1..8 --backend webgpu --batch 64 \
      --json results/eval-$run-len12.json --plot results/eval-$run-len12.svg > results/eval-$run-len12.txt 2>&1
   bash scripts/gpu-run.sh eval runs/$run --checkpoint last --tasks 64 --chunks 1..12 --backend webgpu --batch 64 --no-baselines \
      --set env.options.length=24 --json results/eval-$run-len24.json --plot results/eval-$run-len24.svg > results/eval-$run-len24.txt 2>&1) &
done
wait
echo "total wall $(( $(date +%s) - start )) s" | tee -a results/wall.txt
for run in delethink longcot; do cp runs/$run/metrics.jsonl results/$run-metrics.jsonl; cp runs/$run/report.html results/$run-report.html; done
tar czf "$out/delethink-results.tgz" results
cat results/wall.txt; tail -3 results/*-resume.log; cat results/eval-*-len12.txt | grep -v "^eval:\|backend\|evaluating"

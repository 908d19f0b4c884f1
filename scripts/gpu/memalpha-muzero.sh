#!/usr/bin/env bash
# Mem-α and mallocMuZero on the GPU machine at once (each learner on the GPU, wasm workers on the host's
# CPU cores: 8 for Mem-α, 6 for self-play), then their evaluations, then the MCTS
# benchmark on the GPU (webgpu) and the host CPU (wasm). After `bash scripts/gpu-pack.sh` and
# `bash scripts/bundle-gpu.sh bench/malloc.ts` here, run there as
#   bash .gpu/boot.sh bash scripts/gpu/memalpha-muzero.sh
# Everything lands in one archive, $OUT/memalpha-muzero-results.tgz.
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out" runs results
limit=${LIMIT_S:-290}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee results/card.txt
start=$(date +%s)
timeout "$limit" bash scripts/gpu-run.sh train configs/memalpha-tiny.yaml --run-dir runs/memalpha --no-progress --no-dashboard \
  --set backend=webgpu --set workers.backend=wasm --set workers.count=8 --set train.evalEvery=0 > results/memalpha-train.log 2>&1 &
timeout "$limit" bash scripts/gpu-run.sh train configs/mallocmuzero-small.yaml --run-dir runs/muzero --no-progress --no-dashboard \
  --set backend=webgpu --set workers.count=6 --set train.checkpointEvery=10 --set train.evalEvery=0 > results/muzero-train.log 2>&1 &
wait
echo "training wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
(bash scripts/gpu-run.sh eval runs/memalpha --checkpoint 0 --checkpoint last --split test --tasks 64 --backend webgpu --batch 64 \
    --json results/eval-memalpha-test.json > results/eval-memalpha-test.txt 2>&1
 bash scripts/gpu-run.sh eval runs/memalpha --checkpoint 0 --checkpoint last --split test-long --tasks 16 --backend webgpu --batch 32 \
    --json results/eval-memalpha-test-long.json > results/eval-memalpha-test-long.txt 2>&1) &
(for sims in 4 16 64; do
   bash scripts/gpu-run.sh eval runs/muzero --checkpoint 0 --checkpoint last --backend wasm --set muzero.search.simulations=$sims \
     --json results/eval-muzero-sims$sims.json > results/eval-muzero-sims$sims.txt 2>&1
 done) &
wait
echo "eval wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
timeout 60 node dist/gpu/malloc.mjs --backends webgpu,wasm --quick > results/bench-malloc.txt 2>&1
echo "total wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
for run in memalpha muzero; do cp runs/$run/metrics.jsonl results/$run-metrics.jsonl; cp runs/$run/report.html results/$run-report.html 2>/dev/null; done
tar czf "$out/memalpha-muzero-results.tgz" results
cat results/card.txt
grep -h -v 'operator()\|^Warning' results/*-train.log | grep -E 'sft step (1|[0-9]*00)/|completed|reward .* →|failed|Error' | tail -8
grep -h -B2 -A12 "^method\|mean speed-up\|speed-up" results/eval-*.txt | grep -v "^eval:" | head -60

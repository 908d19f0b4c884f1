#!/usr/bin/env bash
# toolworld on the GPU machine: one SFT warm start (learner on the GPU), then the paper's comparison from
# that same checkpoint — LOOP (per-token ratio), LOOP RwNorm, GRPO, RLOO, and LOOP with per-turn and
# per-trajectory ratios — all at once with the same budget (2 wasm workers each), then TGC / SGC of the
# warm start and of every variant on test-normal, and of the warm start and LOOP on test-challenge.
# After `bash scripts/gpu-pack.sh` here, run there as
#   bash .gpu/boot.sh bash scripts/gpu/toolworld.sh
# Everything lands in one archive, $OUT/toolworld-results.tgz. CFG=configs/loop-toolworld-tiny.yaml SFT_STEPS=500
# ITERATIONS=10 runs the same comparison on the one-template recipe.
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out" runs results
sft=${SFT_STEPS:-150}; iterations=${ITERATIONS:-4}; tasks=${EVAL_TASKS:-48}
cfg=${CFG:-configs/loop-toolworld.yaml}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee results/card.txt
start=$(date +%s)
timeout 270 bash scripts/gpu-run.sh train $cfg --run-dir runs/sft --no-progress --no-dashboard --set backend=webgpu \
  --set train.iterations=0 --set sft.steps=$sft --set workers.count=0 > results/sft-train.log 2>&1
echo "sft wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
declare -A variant=(
  [loop]="--set algorithm=loop" [loop-rwnorm]="--set algorithm=loop-rwnorm" [grpo]="--set algorithm=grpo" [rloo]="--set algorithm=rloo"
  [loop-turn]="--set algorithm=loop --set loop.ratio=turn" [loop-trajectory]="--set algorithm=loop --set loop.ratio=trajectory")
for name in "${!variant[@]}"; do
  timeout ${VARIANT_LIMIT_S:-200} bash scripts/gpu-run.sh train $cfg --run-dir runs/$name --no-progress --no-dashboard --set backend=webgpu --set workers.backend=wasm \
    --set workers.count=2 --set train.initFrom="$PWD/runs/sft" --set train.iterations=$iterations --set train.checkpointEvery=2 ${variant[$name]} \
    > results/$name-train.log 2>&1 &
done
wait
echo "variants wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
bash scripts/gpu-run.sh eval runs/sft --checkpoint 0 --split test-normal --tasks $tasks --backend wasm --json results/eval-sft-test-normal.json > results/eval-sft-test-normal.txt 2>&1 &
bash scripts/gpu-run.sh eval runs/sft --checkpoint 0 --split test-challenge --tasks $tasks --backend wasm --json results/eval-sft-test-challenge.json > results/eval-sft-test-challenge.txt 2>&1 &
bash scripts/gpu-run.sh eval runs/loop --checkpoint last --split test-challenge --tasks $tasks --backend wasm --json results/eval-loop-test-challenge.json > results/eval-loop-test-challenge.txt 2>&1 &
for name in "${!variant[@]}"; do
  bash scripts/gpu-run.sh eval runs/$name --checkpoint last --split test-normal --tasks $tasks --backend wasm --json results/eval-$name-test-normal.json > results/eval-$name-test-normal.txt 2>&1 &
done
wait
echo "total wall $(( $(date +%s) - start )) s" | tee -a results/card.txt
for d in runs/*; do n=$(basename $d); cp $d/metrics.jsonl results/$n-metrics.jsonl 2>/dev/null; done
tar czf "$out/toolworld-results.tgz" results
cat results/card.txt
grep -h -v 'operator()\|^Warning' results/*-train.log | grep -E 'sft step (1|[0-9]*50)/|completed|reward .* →|failed|Error' | tail -16
for f in results/eval-*.txt; do echo "== $f"; grep -A4 "^method" $f; done

#!/usr/bin/env bash
# Learner benchmark on the GPU machine: horizon's step on webgpu (and wasm on that machine's CPU) and the
# PyTorch reference of the same model and step, in one run on the same card. Run there as
#   bash .gpu/boot.sh bash bench/gpu.sh          (after scripts/bundle-gpu.sh bench/learner.ts here)
set -uo pipefail
out=${OUT:-/tmp/horizon-bench}
mkdir -p "$out"
sizes=${SIZES:-tiny,small,medium,large}
{
  echo "# card"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo; echo "# horizon (tfjs webgpu)"; node dist/gpu/learner.mjs --backend webgpu --sizes "$sizes" --steps 5 --json "$out/webgpu.json" 2>&1 | grep -v '^Warning\|operator()'
  echo; echo "# horizon (tfjs wasm, this machine's CPU, one thread)"; node dist/gpu/learner.mjs --backend wasm --sizes tiny,small --steps 2 --json "$out/wasm.json" 2>&1 | grep -v '^Warning\|operator()'
  echo; echo "# PyTorch reference fp32"; python3 bench/reference/learner_step.py --sizes "$sizes" --dtype fp32 --json "$out/torch-fp32.json"
  echo; echo "# PyTorch reference bf16"; python3 bench/reference/learner_step.py --sizes "$sizes" --dtype bf16 --json "$out/torch-bf16.json"
} 2>&1 | tee "$out/learner-gpu.md"

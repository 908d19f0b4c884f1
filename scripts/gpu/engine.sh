#!/usr/bin/env bash
# The GPU engine on the GPU machine, in one call: correctness of every matmul path against the tfjs
# reference (the tensor-core path exists only there), the matmul table, learner tokens/s at the four
# sizes of bench/learner.ts on the engine, on tfjs-webgpu, and of the PyTorch reference (fp32 and bf16).
# Then decoding: new tokens/s on the engine and of the PyTorch KV-cache loop (bench/reference/decode.py).
# Here:   bash scripts/bundle-gpu.sh bench/engine-check.ts bench/engine-matmul.ts bench/engine-learner.ts bench/engine-decode.ts bench/learner.ts
# There:  bash .gpu/boot.sh bash scripts/gpu/engine.sh           (SIZES=tiny,small to shorten)
set -uo pipefail
out=${OUT:-/tmp/horizon-gpu}; mkdir -p "$out"
sizes=${SIZES:-tiny,small,medium,large}
quiet() { grep -v -E '^Warning: max|operator\(\)'; }
{
  echo "# card"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo; echo "# engine: correctness of every path"; timeout 120 node dist/gpu/engine-check.mjs 2>&1 | quiet
  echo; echo "# engine: matmul"; timeout 120 node dist/gpu/engine-matmul.mjs ${MATMUL_ARGS:-} 2>&1 | quiet
  echo; echo "# engine: learner step"; timeout 200 node dist/gpu/engine-learner.mjs --sizes "$sizes" --precision ${PRECISION:-all} --json "$out/engine-learner.json" 2>&1 | quiet
  echo; echo "# PyTorch reference fp32"; timeout 120 python3 bench/reference/learner_step.py --sizes "$sizes" --dtype fp32 --json "$out/torch-fp32.json"
  echo; echo "# PyTorch reference bf16"; timeout 120 python3 bench/reference/learner_step.py --sizes "$sizes" --dtype bf16 --json "$out/torch-bf16.json"
  echo; echo "# engine: decode"; timeout 200 node dist/gpu/engine-decode.mjs --sizes small,large --batches 1,64,256 --json "$out/engine-decode.json" 2>&1 | quiet
  echo; echo "# PyTorch decode reference fp32"; timeout 120 python3 bench/reference/decode.py --dtype fp32 --json "$out/torch-decode-fp32.json"
  echo; echo "# PyTorch decode reference bf16"; timeout 120 python3 bench/reference/decode.py --dtype bf16 --json "$out/torch-decode-bf16.json"
  if [ -z "${SKIP_TFJS:-}" ]; then echo; echo "# tfjs webgpu"; timeout 150 node dist/gpu/learner.mjs --backend webgpu --sizes "${TFJS_SIZES:-$sizes}" --steps 3 2>&1 | quiet; fi
} 2>&1 | tee "$out/engine-gpu.md"

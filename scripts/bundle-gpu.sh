#!/usr/bin/env bash
# Bundles entry points into single files for the GPU machine (which has no node_modules): dist/gpu/*.mjs.
# Usage: bash scripts/bundle-gpu.sh bench/learner.ts [more entry points...]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist/gpu
for entry in "$@"; do
  out="dist/gpu/$(basename "${entry%.ts}").mjs"
  npx esbuild "$entry" --bundle --platform=node --format=esm --target=node20 --main-fields=main \
    --ignore-annotations --external:webgpu --log-level=warning --outfile="$out" \
    --banner:js="import { createRequire as __horizonCreateRequire } from 'node:module'; import { fileURLToPath as __horizonToPath } from 'node:url'; import { dirname as __horizonDirname } from 'node:path'; const require = __horizonCreateRequire(import.meta.url); const __filename = __horizonToPath(import.meta.url); const __dirname = __horizonDirname(__filename);"
  # The wasm backend loads its .wasm binaries from next to the bundle.
  cp node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm dist/gpu/ 2>/dev/null || true
  echo "bundled $entry -> $out ($(du -h "$out" | cut -f1))"
done

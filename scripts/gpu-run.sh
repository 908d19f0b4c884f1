#!/usr/bin/env bash
# Runs the packed CLI (scripts/gpu-pack.sh) on the GPU machine: `bash .gpu/boot.sh bash scripts/gpu-run.sh <horizon args>`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/dist/gpu/redis:$PATH"
exec node dist/gpu/entry.mjs "$@"

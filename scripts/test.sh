#!/usr/bin/env bash
# One command: set up this machine, then typecheck and run the whole test suite (tests start their own
# redis-server processes on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
npx vitest run "$@"

#!/usr/bin/env bash
# One command: set up this machine, then train the quickstart job (toy/guess, SFT warm start + LOOP).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/horizon.js train configs/quickstart.yaml "$@"

#!/usr/bin/env bash
# One command: set up this machine, then typecheck and run the whole test suite (tests start their own
# redis-server processes on free loopback ports; the dashboard's browser tests drive Debian's chromium,
# which setup.sh --with-browser installs; the GPU engine's kernels run on Mesa's lavapipe, --with-lavapipe). Ends with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser --with-lavapipe
# Dawn needs a runtime directory; CI's environment may have none.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
npx tsc --noEmit -p .
# Formatting is part of the typecheck step (npm run format rewrites the files).
npx prettier --check --log-level warn "**/*.ts"
report=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" || true
rm -f "$report"
exit "$status"

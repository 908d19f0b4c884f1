#!/usr/bin/env bash
# Sets up a machine for horizon: npm dependencies and, when missing, redis-server from Debian's packages.
# With --with-browser also Debian's chromium (the dashboard's browser tests drive /usr/bin/chromium).
# Idempotent; safe to run again. Needs Node.js >= 20.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --with-browser)" >&2; exit 2 ;;
  esac
done

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "horizon needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server (Debian package)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server)," >&2
    echo "or point REDIS_URL at an existing Redis >= 6.2 and run horizon with --redis." >&2
    exit 1
  fi
fi

if [ "$with_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package, for the dashboard's browser tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif [ -n "${CI:-}" ]; then
    echo "CI needs /usr/bin/chromium for the dashboard's browser tests: run this script as root on Debian/Ubuntu" >&2
    exit 1
  else
    echo "note: /usr/bin/chromium is missing, so the dashboard's browser tests will be skipped" >&2
    echo "      (install it with: sudo apt-get install -y chromium)" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

#!/usr/bin/env bash
# Sets up a machine for horizon: npm dependencies and, when missing, redis-server from Debian's packages.
# With --with-browser also Debian's chromium (the dashboard's browser tests drive /usr/bin/chromium).
# With --with-lavapipe also Mesa's lavapipe (CPU Vulkan) >= 25 and the Vulkan loader, so that the GPU
# engine's kernels run (slowly, correctly) on a machine without a GPU: Debian 12's own Mesa 22.3 is too old
# for Dawn, so it comes from bookworm-backports, on the mirror apt already uses.
# Idempotent; safe to run again. Needs Node.js >= 20.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0
with_lavapipe=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    --with-lavapipe) with_lavapipe=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --with-browser, --with-lavapipe)" >&2; exit 2 ;;
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

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed 's/^[0-9]*://' | cut -d. -f1; }
if [ "$with_lavapipe" = 1 ] && { [ "$(mesa_version || echo 0)" -lt 25 ] 2>/dev/null || ! ls /usr/lib/*/libvulkan.so.1 >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Mesa lavapipe >= 25 and the Vulkan loader (Debian bookworm-backports, for the GPU engine's tests)"
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    if ! apt-cache policy 2>/dev/null | grep -q "${codename}-backports"; then
      # The backports suite on the same mirror as the machine's own Debian sources.
      mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "'"$codename"'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
      if [ -z "$mirror" ]; then echo "setup.sh: cannot find the Debian mirror in apt's sources to add ${codename}-backports" >&2; exit 1; fi
      echo "deb $mirror ${codename}-backports main" > /etc/apt/sources.list.d/horizon-backports.list
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
  elif [ -n "${CI:-}" ]; then
    echo "CI needs Mesa lavapipe >= 25 for the GPU engine's tests: run this script as root on Debian 12" >&2
    exit 1
  else
    echo "note: Mesa lavapipe >= 25 is missing, so the GPU engine's tests will be skipped" >&2
    echo "      (Debian 12: add bookworm-backports and apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1)" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

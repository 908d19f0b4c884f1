#!/usr/bin/env bash
# Packs what `horizon train` / `horizon eval` need on a machine without Node packages or Redis (the GPU
# machine): the single-file CLI (dist/gpu/entry.mjs, with tfjs' wasm binaries) and this machine's
# redis-server with the shared libraries it links (dist/gpu/redis/). There, run
#   bash .gpu/boot.sh bash scripts/gpu-run.sh train configs/<config>.yaml ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bundle-gpu.sh cli/entry.ts
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css dist/gpu/
server=$(command -v redis-server || true)
if [ -z "$server" ]; then echo "redis-server is not installed here (bash scripts/setup.sh installs it)" >&2; exit 1; fi
rm -rf dist/gpu/redis && mkdir -p dist/gpu/redis/lib
cp "$server" dist/gpu/redis/redis-server.bin
# Every linked library except the C runtime itself (the target's own glibc is used).
ldd "$server" | awk '/=> \// {print $3}' | grep -v -E '/(libc|libm|libpthread|libdl|librt)\.so' | xargs -I{} cp -L {} dist/gpu/redis/lib/
cat > dist/gpu/redis/redis-server <<'WRAP'
#!/usr/bin/env bash
here=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/redis-server.bin" "$@"
WRAP
chmod +x dist/gpu/redis/redis-server
echo "packed redis-server ($(du -sh dist/gpu/redis | cut -f1)) and the CLI into dist/gpu/"

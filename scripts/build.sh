#!/usr/bin/env bash
# Builds the BPF objects, the generated layouts, the libbpf addon and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

make -s -C bpf
node scripts/gen-layouts.js

addon=native/build/Release/tetrahub_native.node
if [ ! -f "$addon" ] || [ -n "$(find native -maxdepth 2 \( -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.gyp' \) -newer "$addon" -not -path '*/build/*' | head -1)" ]; then
  echo "tetrahub: building the libbpf addon" >&2
  npx --no-install node-gyp rebuild --directory native --loglevel=error >/dev/null
fi

npx --no-install tsc -p tsconfig.json

#!/usr/bin/env bash
# Installs what tetrahub needs on a bare Debian 12 machine, then builds what is stale.
# Called by `npm start`, `npm test` and `npm run bench`; quick when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make g++ pkg-config iproute2 procps python3 util-linux)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tetrahub: missing system packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "tetrahub: installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "tetrahub: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build.sh

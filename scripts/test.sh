#!/usr/bin/env bash
# Runs every test: unit tests, integration tests on this kernel, then the VM kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/kernel-fs.sh

mapfile -t files < <(find dist/src dist/integration -name '*.test.js' 2>/dev/null | sort)
node --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"

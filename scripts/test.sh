#!/usr/bin/env bash
# Runs every test: unit and integration tests on this kernel, then the same
# kernel-variant tests inside Debian's 6.1 and 6.12 kernels (one boot each).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/kernel-fs.sh

mapfile -t files < <(find dist/src dist/integration -name '*.test.js' 2>/dev/null | sort)
node --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
host=$?
bash scripts/test-vm.sh
vm=$?
echo "# host tests exit $host, VM kernel tests exit $vm"
[ "$host" -eq 0 ] && [ "$vm" -eq 0 ]

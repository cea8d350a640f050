#!/usr/bin/env bash
# Runs the kernel-variant tests inside Debian's 6.1 and 6.12 kernels (qemu via
# ../shared/vm/vm-run.sh), one boot per kernel. Skips, saying why, when the VM
# runner is not there or cannot start.
set -uo pipefail
cd "$(dirname "$0")/.."
VM=../shared/vm/vm-run.sh
if [ ! -x "$VM" ]; then
  echo "# SKIP VM kernel tests: $VM not found (it lives in the shared folder beside the project)"
  exit 0
fi
mapfile -t files < <(ls dist/integration/vm.test.js dist/integration/vm-policy.test.js dist/integration/policy-connect.test.js dist/src/kernel/native.test.js 2>/dev/null)
rc=0
for k in 6.1 6.12; do
  echo "# VM kernel $k: ${files[*]}"
  "$VM" --kernel "$k" --timeout 900 -e TETRAHUB_IN_VM="$k" -- \
    bash -c 'source scripts/kernel-fs.sh; node --test --test-concurrency=1 --test-timeout=600000 "$@"' _ "${files[@]}"
  r=$?
  if [ "$r" -eq 125 ]; then
    echo "# SKIP VM kernel $k: the VM could not start (exit 125)"
  elif [ "$r" -ne 0 ]; then
    rc=$r
  fi
done
exit $rc

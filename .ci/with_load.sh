#!/usr/bin/env bash
# Run a command while N background processes keep the CPU busy (default 2: both cores of a
# 2-core machine), as on a shared, oversubscribed CI runner. The spinners stop when the
# command ends, whatever its exit status.
# Usage: bash .ci/with_load.sh [N] COMMAND [ARGS...]
set -euo pipefail
n=2
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then n=$1; shift; fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$n"); do
  python -c "while True: pass" &
  pids+=("$!")
done
echo "with_load: $n busy processes (${pids[*]}); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$@"

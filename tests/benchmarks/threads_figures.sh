#!/usr/bin/env bash
# Workers x threads on this machine (README "Threads and workers"): the same small suite
# (tests/benchmarks/threads_suite.toml) with 1 worker x 2 threads, 1 x 1 and 2 x 1; prints the
# wall time and the load average around each run. Usage: bash tests/benchmarks/threads_figures.sh [OUT]
set -euo pipefail
out=${1:-$(mktemp -d)}
suite="$(dirname "$0")/threads_suite.toml"
for cfg in "1 2" "1 1" "2 1"; do
  set -- $cfg
  echo "== jobs $1 threads $2, load $(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s.%N)
  dpbench run --suite "$suite" --jobs "$1" --threads "$2" --out "$out/j$1-t$2" --force --quiet >/dev/null
  echo "wall $(python -c "import time; print(round(time.time() - $start, 1))") s, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "per-trial training throughput: results.json of each run under $out"

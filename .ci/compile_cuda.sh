#!/usr/bin/env bash
# Compile every CUDA source under csrc/ with nvcc for sm_80 and sm_90 (object files only, into a
# temporary folder). The .cu files include only CUDA headers, so no torch is needed. Skips (exit
# 0) when nvcc is not on PATH; exits non-zero on any compile error.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1; then
  echo "compile_cuda: nvcc not on PATH, skipped"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
shopt -s nullglob globstar
for src in csrc/**/*.cu; do
  obj="$out/$(echo "$src" | tr '/' '_').o"
  if nvcc -std=c++17 -O3 -Werror all-warnings -c "$src" -o "$obj" \
      -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90; then
    echo "compile_cuda: ok   $src"
  else
    echo "compile_cuda: FAIL $src" >&2
    status=1
  fi
done
exit $status

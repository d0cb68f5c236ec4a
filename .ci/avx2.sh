#!/usr/bin/env bash
# Run a command with every CPU kernel library capped at AVX2 (x86-64-v3), as on an AVX2-only
# machine (e.g. AMD EPYC Zen 2/3). Which of these take effect is checked by .ci/isa_check.py:
#   ATEN_CPU_CAPABILITY=avx2       ATen's own vectorised kernels (tanh, sigmoid, ...)
#   MKL_ENABLE_INSTRUCTIONS=AVX2   MKL's BLAS (matmul, linear layers) and VML (exp, ...)
#   ONEDNN_MAX_CPU_ISA=AVX2        oneDNN primitives (convolutions, some RNN paths)
#   DPBENCH_EXT_MARCH=x86-64-v3    the fused DNC extension is JIT-built for AVX2 only
#                                  (its own cache entry; see dpbench/ops/_loader.py)
# Usage: bash .ci/avx2.sh COMMAND [ARGS...]
set -euo pipefail
export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
export DPBENCH_EXT_MARCH=x86-64-v3
exec "$@"

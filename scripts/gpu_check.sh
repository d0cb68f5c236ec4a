#!/usr/bin/env bash
# One GPU session in one go (issues 6, 11 and 19): build the fused DNC kernels by JIT for this GPU,
# check them against the pure-PyTorch reference (both kernel versions), run compute-sanitizer on
# a small case, then time reference / torch.compile(reference) / fused with `dpbench bench dnc`
# (the training-step ratio vs eager: goal ≥ 20× at B=16, N=256; link bandwidth vs copy at
# N=1024: goal ≥ 0.5), and the model's CUDA-graphed step loop against its eager loop
# (dnc_graph_check: same outputs and gradients, training-step time both ways).
# Every step has a time cap; its stdout/stderr go to WORK/<step>.log/.err (WORK: default
# /tmp/dpbench-gpu). At the end WORK is packed into OUTDIR/gpu_check.tar.gz next to
# OUTDIR/table.txt (the short table, also printed last); OUTDIR defaults to $OUT, else WORK.
#
#   bash scripts/gpu_check.sh [OUTDIR]        # ~6-7 min on an H100 (budget: 8)
#
# Runs from a source checkout without installing (PYTHONPATH); needs torch with CUDA, ninja,
# nvcc. DPBENCH_DNC_CUDA_VERSION=1 selects the first version of the CUDA kernels (compared here).
# DEVICE, MAIN_SLOTS, GRID_SLOTS override the device and sizes (for a dry run on a CPU).
set -u
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/dpbench-gpu}
OUTDIR=${1:-${OUT:-$WORK}}
DEVICE=${DEVICE:-cuda}
MAIN_SLOTS=${MAIN_SLOTS:-256}
GRID_SLOTS=${GRID_SLOTS:-64,256,1024}
DEADLINE=${DEADLINE:-480}   # seconds for all steps together; a step past it is skipped
mkdir -p "$WORK" "$OUTDIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export DPBENCH_EXT_CACHE=${DPBENCH_EXT_CACHE:-$PWD/.dpbench-cache/ext}
PY=${PYTHON:-python3}
SUMMARY="$WORK/summary.txt"
: >"$SUMMARY"
T0=$(date +%s)

# step NAME SECONDS CMD...: run with a time limit (capped by the deadline) (SIGINT first, so dpbench saves what it has),
# stdout to WORK/NAME.log, stderr to WORK/NAME.err; rc and seconds go to the summary.
step() {
  local name=$1 limit=$2 start rc left
  shift 2
  start=$(date +%s)
  left=$(( T0 + DEADLINE - start ))
  if [ "$left" -lt 15 ]; then
    printf '%-14s skipped (deadline)\n' "$name" | tee -a "$SUMMARY"
    return
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  echo "=== $name (limit ${limit}s): $*"
  timeout -s INT -k 10 "$limit" "$@" >"$WORK/$name.log" 2>"$WORK/$name.err"
  rc=$?
  printf '%-14s rc=%-3s %4ss\n' "$name" "$rc" "$(( $(date +%s) - start ))" | tee -a "$SUMMARY"
  tail -n 8 "$WORK/$name.err"
  tail -n 12 "$WORK/$name.log" | cut -c1-200
  tar -czf "$OUTDIR/gpu_check.tar.gz" -C "$WORK" . 2>/dev/null   # after every step: survives a kill
}

step env 30 bash -c "nvidia-smi || true; $PY -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(), torch.cuda.get_device_capability())'; nvcc --version | tail -1; nproc"
step build 240 "$PY" -c "from dpbench.ops import _loader; s = _loader.fused_status('$DEVICE'); print(s); raise SystemExit(0 if s.available else 1)"
step selftest 120 "$PY" -m dpbench.cli doctor --selftest --device $DEVICE
step pytest 120 "$PY" -m pytest -q tests/test_dnc_kernels.py -k cuda
step bench_grid 120 "$PY" -m dpbench.cli bench dnc --device $DEVICE --json --batch 1,16 --slots "$GRID_SLOTS" --impls reference,fused
if [ "$DEVICE" = cuda ]; then   # device time alone: each whole sequence replayed from a CUDA graph
  step bench_graph 90 "$PY" -m dpbench.cli bench dnc --device cuda --json --batch 1,16 --slots "$GRID_SLOTS" --impls reference+graph,fused+graph --no-memory
fi
for v in 1; do   # the earlier kernel version(s), timed in the same session
  step bench_grid_v$v 45 env DPBENCH_DNC_CUDA_VERSION=$v "$PY" -m dpbench.cli bench dnc --device $DEVICE --json --batch 1,16 --slots "$GRID_SLOTS" --impls fused --no-memory
  step selftest_v$v 90 env DPBENCH_DNC_CUDA_VERSION=$v "$PY" -m dpbench.cli doctor --selftest --device $DEVICE
done
if [ "$DEVICE" = cuda ] && command -v compute-sanitizer >/dev/null; then
  step memcheck 60 compute-sanitizer --tool memcheck --error-exitcode 9 "$PY" -m dpbench.ops.dnc_check --device cuda --shape 2,300,5,3
  step racecheck 60 compute-sanitizer --tool racecheck --error-exitcode 9 "$PY" -m dpbench.ops.dnc_check --device cuda --shape 2,300,5,3
fi
step bench_main 150 "$PY" -m dpbench.cli bench dnc --device $DEVICE --json --batch 16 --slots "$MAIN_SLOTS"
if [ "$DEVICE" = cuda ]; then   # issue 19: the model's own step loop in a CUDA graph (never run on a GPU yet)
  step model_graph 90 "$PY" -m dpbench.ops.dnc_graph_check --batch 16 --slots "$MAIN_SLOTS"
fi

# The short table: step outcomes, then the bench rows (median ms per T-step sequence).
"$PY" - "$WORK" <<'EOF' | tee "$WORK/table.txt"
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print((out / "summary.txt").read_text())
for name in ("bench_grid", "bench_graph", "bench_grid_v1", "bench_main"):
    text = (out / f"{name}.log").read_text() if (out / f"{name}.log").exists() else ""
    try:
        data = json.loads(text[text.index("{"):text.rindex("}") + 1])
    except ValueError:
        print(f"{name}: no JSON"); continue
    print(f"{name}: {data.get('gpu', {}).get('name', '?')}, copy "
          f"{data.get('gpu', {}).get('copy_bandwidth_bytes_per_s', 0) / 1e12:.2f} TB/s")
    for r in data["rows"]:
        c = r["config"]
        f = lambda v, s=".2f": "-" if v is None else format(v, s)  # noqa: E731
        print(f"  B={c['batch']:<3} N={c['slots']:<5} {r['impl']:9} {r['mode']:7} "
              f"{f(r['median_ms'], '.2f'):>9} ms  x_ref {f(r['speedup_vs_reference']):>6}  "
              f"x_comp {f(r['speedup_vs_compiled']):>6}  peak/ref {f(r['peak_ratio_vs_reference'])} "
              f"{r['error'][:50]}")
    for t in data.get("gpu", {}).get("link_traffic", []):
        print(f"  floor B={t['batch']} N={t['slots']}: fwd {f(t['floor_forward_ms'], '.3f')} ms "
              f"(fused x{f(t['fused_forward_over_floor'], '.1f')}), train "
              f"{f(t['floor_train_ms'], '.3f')} ms (fused x{f(t['fused_train_over_floor'], '.1f')})")
EOF
echo "total $(( $(date +%s) - T0 ))s" | tee -a "$SUMMARY"
tar -czf "$OUTDIR/gpu_check.tar.gz" -C "$WORK" . 2>/dev/null
cp "$WORK/table.txt" "$OUTDIR/table.txt" 2>/dev/null || true

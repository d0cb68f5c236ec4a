"""Per-sequence overhead of the fused DNC training step on CPU (issue 19): wall time, minor
page faults and a torch.profiler split into kernel time (the dpbench::dnc_access_* ops) and
everything else (autograd engine, Python, other ATen ops), for one 64-step training sequence.

    PYTHONPATH=. python scripts/dnc_overhead.py [--batch 16 --slots 256 --repeats 5]

Works against older checkouts too (it only uses dpbench.ops.dnc_bench's sequence runner), so
the same command with PYTHONPATH pointing at another checkout measures "before".
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from dpbench.ops import _loader
from dpbench.ops.dnc_bench import Config, _clear_grads, make_interfaces, run_sequence, step_function


def measure(cfg: Config, impl: str, repeats: int) -> dict:
    step = step_function(impl)
    xs = make_interfaces(cfg, "cpu", grad=True)
    run_sequence(step, cfg, xs, "cpu", train=True)          # warm-up
    times, faults = [], []
    for _ in range(repeats):
        _clear_grads(xs)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        run_sequence(step, cfg, xs, "cpu", train=True)
        times.append((time.perf_counter() - t0) * 1e3)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    _clear_grads(xs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run_sequence(step, cfg, xs, "cpu", train=True)
        wall = (time.perf_counter() - t0) * 1e3
    kernel = {}
    for e in prof.key_averages():
        if e.key.startswith("dpbench::dnc_access"):
            kernel[e.key] = e.self_cpu_time_total / 1e3
    kernels = sum(kernel.values())
    return {"impl": impl, "median_ms": statistics.median(times), "samples_ms": times,
            "minor_faults_per_seq": statistics.median(faults),
            "profiled_wall_ms": wall, "kernel_ms": kernel,
            "overhead_ms": wall - kernels, "overhead_share": 1 - kernels / wall}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--slots", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--impls", default="fused")
    args = p.parse_args()
    status = _loader.load()
    cfg = Config(args.batch, args.slots)
    out = {"config": cfg.__dict__, "fused": status.reason, "threads": torch.get_num_threads(),
           "env": {k: os.environ.get(k) for k in ("DPBENCH_MALLOPT", "DPBENCH_EXT_MARCH")},
           "load_before": os.getloadavg(),
           "rows": [measure(cfg, i, args.repeats) for i in args.impls.split(",")],
           "load_after": os.getloadavg()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Cost of the long-term statistics: a ~5000-parameter model on ``lorenz`` (window 32),
one closed-loop pass of 100 Lyapunov times (4416 steps) from the 8 VPT starts, the 4 long
starts with a Benettin twin in the same batch (batch 12; the first 663 steps are the VPT
rollouts), then every long-term metric on those 4 starts. Target: ≤ 5 s on 2 cores.

``pytest tests/benchmarks/test_longterm_bench.py --benchmark-only`` (or run this file as a
script: ``python tests/benchmarks/test_longterm_bench.py [model ...]``, which prints the
seconds of the rollouts and of the statistics per model). The data is generated (and
cached) before timing; the reference trajectory is read from the cache.
"""
from __future__ import annotations

import sys
import time

MODELS = ("lstm", "gru", "transformer")


def long_term_seconds(model_name: str, budget: int = 5000) -> tuple[float, float, int]:
    """``(rollout seconds, statistics seconds, parameters)`` for one model."""
    import torch

    from dpbench.data import prepare
    from dpbench.harness import evaluate as E
    from dpbench.harness.budget import build_at_budget
    from dpbench.harness.suite import EvalConfig
    from dpbench.plugins import load_registry
    from dpbench.specs import resolve

    registry = load_registry(disable_third_party=True)
    task = prepare(registry.dataset("lorenz"), {}, 0)
    built = build_at_budget(registry.model(model_name), task, {}, budget, 0.1)
    model = built.module.eval()
    cfg = EvalConfig()
    E.rollout_segments(task, cfg), task.fresh_series(E.REFERENCE_INDEX, E.long_steps(task, cfg))  # into the cache
    import dpbench.metrics._longterm, dpbench.metrics._vpt  # noqa: E401,F401  (scipy imports not timed)
    ctx = E.EvalContext(model, task, cfg, "cpu")
    specs = registry.metrics_where(table="long_term")
    with torch.no_grad():
        t0 = time.perf_counter()
        _ = ctx.long_rollouts
        t1 = time.perf_counter()
        for spec in specs:
            if spec.compute is not None:
                resolve(spec.compute)(ctx)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, built.param_count


def test_long_term_statistics_of_a_5000_parameter_lstm(benchmark):
    import torch

    torch.set_num_threads(2)
    roll, stats, params = benchmark.pedantic(long_term_seconds, args=("lstm",), rounds=1, iterations=1)
    benchmark.extra_info.update(rollout_s=roll, stats_s=stats, params=params)
    print(f"lstm ({params} parameters): rollouts {roll:.2f} s, statistics {stats:.2f} s")


if __name__ == "__main__":
    import os

    import torch

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    for name in sys.argv[1:] or MODELS:
        roll, stats, params = long_term_seconds(name)
        print(f"{name}: {params} parameters, long rollouts {roll:.2f} s, statistics {stats:.2f} s, "
              f"total {roll + stats:.2f} s")

"""Machine-speed calibration: a small fixed workload timed with the run's thread settings.

:func:`calibrate` times a fixed mix close to what dpbench trains — a 256×256 float32 matmul
chain and forward + backward through a small ``nn.LSTM`` (batch 32, 32 steps, 3 → 64
units) — and reports *workloads per second*. ``dpbench compare --normalize`` divides each
run's throughput samples by its calibration median, so a runner that is uniformly 20 %
slower (CPU model, turbo, noisy neighbours) no longer looks like a code regression.

The workload and its seed are fixed: changing them invalidates stored calibrations, so
:data:`VERSION` is stored alongside.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch

VERSION = 1
UNIT = "workloads/s"


def _workload() -> tuple[torch.nn.LSTM, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    lstm = torch.nn.LSTM(3, 64, batch_first=True)
    x = torch.randn(32, 32, 3, generator=gen)
    a = torch.randn(256, 256, generator=gen) / 16.0
    return lstm, x, a


def _run_once(lstm: torch.nn.LSTM, x: torch.Tensor, a: torch.Tensor) -> None:
    b = a
    for _ in range(8):
        b = torch.tanh(b @ a)
    out, _ = lstm(x)
    out.square().mean().backward()
    lstm.zero_grad(set_to_none=True)


def calibrate(repeats: int = 10, inner: int = 4, warmup: int = 3) -> dict[str, Any]:
    """Time the fixed workload ``repeats`` times (``inner`` workloads each, after
    ``warmup`` untimed ones). One workload is ≈ 0.27 GFLOP of matmul plus a 32-step LSTM
    forward/backward, so the default 40 timed workloads take well under a second on a
    free core (it took 8–40 s on the oversubscribed 2-core development machine).

    Returns ``{"samples": [workloads/s, ...], "median": float, "unit": "workloads/s",
    "version": VERSION, "threads": torch.get_num_threads()}``.
    """
    lstm, x, a = _workload()
    for _ in range(warmup):
        _run_once(lstm, x, a)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            _run_once(lstm, x, a)
        samples.append(inner / (time.perf_counter() - t0))
    return {"samples": samples, "median": float(statistics.median(samples)), "unit": UNIT,
            "version": VERSION, "threads": torch.get_num_threads()}


if __name__ == "__main__":  # python -m dpbench.calibration
    result = calibrate()
    print(f"calibration: {result['median']:.1f} {UNIT} (threads {result['threads']})")

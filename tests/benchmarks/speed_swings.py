"""How a shared machine's speed moves within one process (docs/ci.md, "Interleaved timing bursts").

    python tests/benchmarks/speed_swings.py fnn 30

trains the model (built as the harness builds it, on lorenz:length=600,window=16, one torch
thread) for the given seconds in blocks of 20 steps and prints the median rate of each
~1/30 of the run, in k seq/s: on an idle 2-vCPU VM the rate jumped between ~27 k and ~51 k
within one process, holding each level for seconds.
"""
import statistics
import sys
import time

import torch

from dpbench.data import prepare
from dpbench.harness.budget import build_at_budget
from dpbench.harness.train import task_loss
from dpbench.plugins import get_registry


def main(model: str = "fnn", seconds: float = 30.0) -> None:
    torch.set_num_threads(1)
    registry = get_registry()
    task = prepare(registry.dataset("lorenz"), {"length": 600, "window": 16}, 0)
    torch.manual_seed(0)
    net = build_at_budget(registry.model(model), task, {}, 5000, 0.1).module
    opt, loss_fn = torch.optim.Adam(net.parameters(), 1e-3), task_loss(task)
    x, y = task.train.x, task.train.y
    rates, end = [], time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        for _ in range(20):
            idx = torch.randint(len(x), (32,))
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
        rates.append(20 * 32 / (time.perf_counter() - t0))
    k = max(1, len(rates) // 30)
    print(model, " ".join(f"{statistics.median(rates[i:i + k]) / 1000:.1f}" for i in range(0, len(rates), k)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fnn", float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)

"""The DNC model's ``cuda_graph=True`` against its eager loop on one GPU (scripts/gpu_check.sh):
the same outputs and parameter gradients (float32, relative 1e-4), and the median wall time of
a training step (forward, backward, Adam) both ways.

    python -m dpbench.ops.dnc_graph_check [--batch 16 --slots 256 --steps 64 --repeats 10]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from dpbench.models.dnc import DNC


def train_step_ms(model: DNC, x: torch.Tensor, y: torch.Tensor, repeats: int) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for i in range(repeats + 3):      # 3 warm-ups (the graph is captured in the first)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--slots", type=int, default=256)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    torch.manual_seed(0)
    kw = dict(input_size=8, input_steps=a.steps, output_size=8, output_steps=a.steps,
              task="recall", memory_slots=a.slots, word_size=32, read_heads=4, impl="fused")
    eager = DNC(**kw).cuda()
    graphed = copy.deepcopy(eager)
    graphed.cuda_graph = True
    x = torch.randn(a.batch, a.steps, 8, device="cuda")
    y = torch.randn(a.batch, a.steps, 8, device="cuda")
    out = {}
    for name, model in (("eager", eager), ("graph", graphed)):
        for _ in range(2):               # the graphed model captures, then replays
            model.zero_grad()
            pred = model(x)
            torch.nn.functional.mse_loss(pred, y).backward()
        out[name] = (pred.detach(), [q.grad.clone() for q in model.parameters()])
    rel = lambda u, v: ((u - v).abs().max() / v.abs().max().clamp_min(1e-30)).item()  # noqa: E731
    result = {"output_rel": rel(out["graph"][0], out["eager"][0]),
              "grad_rel_max": max(rel(g, e) for g, e in zip(out["graph"][1], out["eager"][1])),
              "eager_ms": statistics.median(train_step_ms(eager, x, y, a.repeats)),
              "graph_ms": statistics.median(train_step_ms(graphed, x, y, a.repeats)),
              "config": vars(a)}
    result["ok"] = result["output_rel"] <= 1e-4 and result["grad_rel_max"] <= 1e-4
    print(json.dumps(result, indent=1))
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()

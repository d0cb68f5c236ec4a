"""One optimiser step (forward, backward, Adam) of one representative model per family, at
the smoke suite's shapes: batch 16, window 16, Lorenz (3 variables), ~2000 parameters."""
from __future__ import annotations

import math

import pytest
import torch

FAMILIES = {"feedforward": "fnn", "recurrent": "lstm", "attention": "bahdanau", "memory": "dnc",
            "plastic": "plastic-rnn", "hybrid": "hybrid"}
BATCH = 16
BUDGET = 2000


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_training_step(benchmark, registry, forecast_task, family):
    from dpbench.harness.budget import build_at_budget
    from dpbench.harness.train import task_loss

    name = FAMILIES[family]
    if name not in registry.models:
        pytest.skip(f"model {name!r} is not registered")
    torch.manual_seed(0)
    model = build_at_budget(registry.model(name), forecast_task, {}, BUDGET, 0.1).module.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = task_loss(forecast_task)
    x, y = forecast_task.train.x[:BATCH], forecast_task.train.y[:BATCH]

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    benchmark.extra_info.update(model=name, batch=BATCH, params=sum(p.numel() for p in model.parameters()))
    loss = benchmark(step)
    assert math.isfinite(loss)

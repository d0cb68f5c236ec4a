"""Closed-loop forecasting: the one home of "feed the predictions back as inputs".

Used by the harness to score every forecaster on the test series
(:func:`dpbench.harness.evaluate.rollout`) and by fitted models to choose their
hyper-parameters on the validation series (:mod:`dpbench.models.classical`).
"""
from __future__ import annotations

import torch
from torch import nn

from dpbench.data import Split


@torch.no_grad()
def closed_loop(model: nn.Module, series: torch.Tensor, window: int, targets: list[int], steps: int,
                starts: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-loop forecasts of ``series [L, D_in]`` from ``starts`` evenly spaced windows.

    Each window ``[window, D_in]`` is fed to ``model``; its predictions of the ``targets``
    columns replace the true values in the next rows (exogenous columns keep their true
    values) and the window slides on. Returns ``(pred, truth)``, each ``[S, steps', D_out]``
    with ``steps' = min(steps, L - window)``.
    """
    steps = min(steps, series.shape[0] - window)
    if steps <= 0:
        raise ValueError("series too short for a rollout")
    first = torch.linspace(0, series.shape[0] - window - steps, starts).round().long().unique()
    offsets = torch.arange(window)
    windows = series[first[:, None] + offsets].to(device)
    index = torch.tensor(targets)
    preds, made = [], 0
    while made < steps:
        out = model(windows).float()
        k = min(out.shape[1], steps - made)
        rows = series[(first + window + made)[:, None] + torch.arange(k)].to(device).clone()
        rows[..., index] = out[:, :k].to(rows.dtype)
        windows = torch.cat([windows[:, k:], rows], dim=1)
        preds.append(out[:, :k].cpu())
        made += k
    pred = torch.cat(preds, dim=1)
    truth = series[(first + window)[:, None] + torch.arange(steps)][..., index]
    return pred, truth


def series_of(split: Split) -> torch.Tensor | None:
    """The contiguous series ``[n + T - 1, D]`` behind stride-1 windows ``x [n, T, D]``,
    or ``None`` when consecutive windows do not overlap that way."""
    x = split.x
    if len(x) < 2 or not torch.equal(x[1:, :-1], x[:-1, 1:]):
        return None
    return torch.cat([x[0], x[1:, -1]], dim=0)

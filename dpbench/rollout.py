"""Closed-loop forecasting: the one home of "feed the predictions back as inputs".

:func:`feed_back` runs the loop from given windows (with true exogenous rows and optional
Benettin twins): the harness's VPT and long rollouts (:mod:`dpbench.harness.evaluate`).
:func:`closed_loop` starts it from evenly spaced windows of one series: fitted models choose
their hyper-parameters on the validation series (:mod:`dpbench.models.classical`) and the
NRMSE84 free run (:mod:`dpbench.metrics._forecast`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dpbench.data import Split

#: share of a twin rollout's steps that align the perturbation and are not counted
TWIN_TRANSIENT = 0.1


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
    windows = series[first[:, None] + torch.arange(window)]
    future = series[(first + window)[:, None] + torch.arange(steps)]
    pred, _, _ = feed_back(model, windows, steps, targets, device, driver=future)
    return pred, future[..., targets]


@torch.no_grad()
def feed_back(model: nn.Module, windows: torch.Tensor, steps: int, targets: list[int], device: str,
                driver: torch.Tensor | None = None, delta: float = 0.0, seed: int = 0,
                twins: int | None = None) -> tuple[torch.Tensor, np.ndarray | None, int]:
    """Feed the model's predictions back for ``steps`` steps from ``windows [S, T, D_in]``
    (the one closed-loop loop: harness rollouts, long rollouts, fitted models' validation).

    The target columns of each new row are the model's outputs; the other (exogenous)
    columns come from ``driver [S, steps, D_in]`` (``None``: every column is a target). With
    ``delta > 0`` a twin of each of the first ``twins`` rollouts (default all) starts
    ``delta`` away (random direction over the window's target columns) and is renormalised
    to distance ``delta`` after every model call (Benettin et al. 1980); the twins ride in
    the same batch.

    Returns ``(pred [S, steps, D_out], log_growth [twins] or None, counted_steps)``: the sums
    of ``ln(d/delta)`` over the calls after the first ``TWIN_TRANSIENT`` of the steps
    (which align the perturbation) and the number of steps they cover.
    """
    n = windows.shape[0]
    nt = n if twins is None else min(int(twins), n)
    w = windows.to(device).float()
    tgt = torch.tensor(targets, device=device)
    if delta:
        v = torch.zeros_like(windows, dtype=torch.float32)
        g = torch.Generator().manual_seed(seed)
        v[..., targets] = torch.randn(v[..., targets].shape, generator=g)
        v = v / v.flatten(1).norm(dim=1)[:, None, None]
        w = torch.cat([w, w[:nt] + delta * v[:nt].to(device)])
    growth = torch.zeros(nt, dtype=torch.float64, device=device)
    skip, counted = int(TWIN_TRANSIENT * steps), 0
    preds, made = [], 0
    while made < steps:
        out = model(w).float()
        k = min(out.shape[1], steps - made)
        if driver is not None:
            rows = driver[:, made:made + k].to(device).float().clone()
            rows = torch.cat([rows, rows[:nt]]) if delta else rows
        else:
            rows = w.new_zeros(w.shape[0], k, w.shape[2])
        rows[..., tgt] = out[:, :k]
        w = torch.cat([w[:, k:], rows], dim=1)
        preds.append(out[:n, :k].cpu())
        if delta:
            diff = w[n:] - w[:nt]
            d = diff.flatten(1).norm(dim=1)
            if made >= skip:
                growth += torch.log(d.double() / delta)
                counted += k
            scale = torch.where(d > 0, delta / d, torch.zeros_like(d))
            w[n:] = w[:nt] + diff * scale[:, None, None]
        made += k
    return torch.cat(preds, dim=1), (growth.cpu().numpy() if delta else None), counted



def series_of(split: Split) -> torch.Tensor | None:
    """The contiguous series ``[n + T - 1, D]`` behind stride-1 windows ``x [n, T, D]``,
    or ``None`` when consecutive windows do not overlap that way."""
    x = split.x
    if len(x) < 2 or not torch.equal(x[1:, :-1], x[:-1, 1:]):
        return None
    return torch.cat([x[0], x[1:, -1]], dim=0)

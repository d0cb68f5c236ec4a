"""Metric functions (pure tensor maths; no model, no harness) and the built-in metric plugins.

The public modules of this package (``forecast``, ``vpt``, ``longterm``, ``recall``, ``cost``)
register every built-in metric through the ``dpbench_register_metrics`` hook, exactly as a
third-party plugin would; the registry (:mod:`dpbench.plugins`) is the one list of metrics
that evaluation, summary, report and ``dpbench compare`` read. This module keeps the
primitive functions the others (and other packages) import:

* NRMSE: root mean squared error normalised per dimension by the target's variance,
  ``sqrt(mean_d MSE_d / var_d)`` (Vlachas et al. 2020, Neural Networks 126:191, eq. 23).
* Valid prediction time (VPT): the first time the closed-loop forecast's normalised error
  ``e(t) = sqrt(mean_d ((ŷ_d(t) − y_d(t)) / σ_d)^2)`` exceeds ``ε``, in Lyapunov times
  ``t·λ`` (Pathak et al. 2018, PRL 120:024102; Vlachas et al. 2020 use ε = 0.5). A non-finite
  error counts as a crossing; a rollout that never crosses is *censored* at its length.
* Recall: accuracy on the scored positions, cross-entropy over all positions, compared
  with the task's memoryless baseline.
* ``max_lag_at_90``: the largest lag whose mean accuracy is ≥ 0.9.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch
import torch.nn.functional as F


def nrmse(pred: torch.Tensor, target: torch.Tensor, variance: torch.Tensor | None = None) -> float:
    """NRMSE of ``pred`` vs ``target`` (``[..., D]``), normalised by ``variance [D]``
    (default: the target's own per-dimension variance)."""
    pred, target = pred.double().reshape(-1, pred.shape[-1]), target.double().reshape(-1, target.shape[-1])
    var = target.var(dim=0, unbiased=False) if variance is None else variance.double()
    var = torch.where(var > 1e-12, var, torch.ones_like(var))
    return float(torch.sqrt(((pred - target) ** 2).mean(dim=0).div(var).mean()))


def normalised_error(pred: torch.Tensor, target: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``e(t)`` for ``pred, target [S, H, D]`` and per-dimension ``std [D]`` → ``[S, H]``."""
    return torch.sqrt((((pred - target) / std) ** 2).mean(dim=-1))


def crossings(error: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """First step at which ``error [S, H]`` exceeds ``threshold`` or is not finite
    (``NaN > ε`` is false, so a NaN rollout would otherwise count as valid forever), and
    whether the rollout never crossed (right-censored at ``H``) → ``([S] long, [S] bool)``."""
    over = ~(error <= threshold)  # NaN and ±inf count as crossing
    censored = ~over.any(dim=1)
    first = torch.where(censored, torch.full_like(censored, error.shape[1], dtype=torch.long),
                        over.float().argmax(dim=1))
    return first.long(), censored


def valid_steps(error: torch.Tensor, threshold: float) -> torch.Tensor:
    """Steps before ``error [S, H]`` first exceeds ``threshold`` (H if it never does) → ``[S]``."""
    return crossings(error, threshold)[0]


def vpt_lyapunov_times(error: torch.Tensor, threshold: float, dt: float, lyapunov: float) -> torch.Tensor:
    """Valid prediction time of each rollout in Lyapunov times: steps·dt·λ → ``[S]``."""
    return valid_steps(error, threshold).double() * dt * lyapunov


def recall_scores(logits_or_pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
                  loss: str, tolerance: float | None = None) -> dict[str, float]:
    """Recall metrics.

    ``loss="ce"``: ``logits [n, T, C]``, ``target [n, T]`` → ``accuracy`` on masked steps,
    ``cross_entropy`` (nats, mean over all steps). ``loss="mse"``: ``pred, target [n, T, D]``
    → ``mse`` and, with ``tolerance``, ``accuracy`` = share of scored outputs within it.
    """
    if loss == "ce":
        ce = F.cross_entropy(logits_or_pred.reshape(-1, logits_or_pred.shape[-1]).double(), target.reshape(-1))
        hit = logits_or_pred.argmax(dim=-1) == target
        if mask is not None:
            hit = hit[mask]
        return {"accuracy": float(hit.double().mean()), "cross_entropy": float(ce)}
    err = (logits_or_pred.double() - target.double())
    out = {"mse": float((err ** 2).mean())}
    if tolerance is not None:
        ok = err.abs() <= tolerance
        if mask is not None:
            ok = ok[mask]
        out["accuracy"] = float(ok.double().mean())
    return out


def max_lag_at(accuracy_by_lag: Mapping[float, float], level: float = 0.9) -> float:
    """The largest lag whose accuracy is ≥ ``level`` (0 when none is), from ``{lag: acc}``."""
    good = [lag for lag, acc in accuracy_by_lag.items() if acc is not None and acc >= level]
    return float(max(good)) if good else 0.0


def derived_metrics(trials: Iterable[Any], registry: Any) -> list[dict[str, Any]]:
    """Rows derived over a run's trials (``results.json["derived"]``): every registered
    metric with ``scope="run"``, e.g. ``max_lag_at_90``. ``registry``: a
    :class:`dpbench.plugins.Registry`."""
    from dpbench.specs import resolve

    trials = list(trials)
    rows: list[dict[str, Any]] = []
    for spec in registry.metrics_where(scope="run"):
        if spec.compute is not None:
            rows += list(resolve(spec.compute)(trials))
    return rows


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) ignoring NaNs."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def format_mean_std(mean: float | None, std: float | None = None) -> str:
    """Compact ``mean ± std`` for tables: ``-`` when missing; thousands as integers,
    everything else (huge values included) to three significant digits."""
    if mean is None or not math.isfinite(mean):
        return "-"

    def one(x: float, digits: str) -> str:
        return format(x, ".0f" if 1000 <= abs(x) < 1e6 else digits)

    text = one(mean, ".3g")
    if std is not None and math.isfinite(std):
        text += " ± " + one(std, ".2g")
    return text

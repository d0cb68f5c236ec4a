"""Valid prediction time (VPT), hardened: the computation (specs in :mod:`dpbench.metrics.vpt`).

``e(t) = sqrt(mean_d ((ŷ_d(t) − y_d(t)) / σ_d)^2)`` (σ_d = 1 in dpbench's train-normalised
units); VPT is the first ``t`` with ``e(t) > ε``, in Lyapunov times ``t·λ_max`` (Pathak et
al. 2018, PRL 120:024102, use ε = 0.4; Vlachas et al. 2020, Neural Networks 126:191, ε = 0.5).

* A non-finite error counts as a crossing at that step (:func:`dpbench.metrics.crossings`).
* A rollout that never crosses is right-censored at the rollout length (the cap,
  ``vpt_cap`` in Lyapunov times); ``vpt_censored`` is the censored fraction. A cap that
  many rollouts reach understates the best models: raise ``[eval] vpt_cap_lyapunov``.
* The reported value is the **median** over rollouts with a percentile-bootstrap 95 %
  interval (Efron & Tibshirani 1993, ch. 13; ``scipy.stats.bootstrap``). The median of
  right-censored data is exact as long as fewer than half the rollouts are censored.
* ``vpt_lyapunov`` is at ``[eval] vpt_threshold``; every other ε in ``vpt_thresholds``
  gives ``vpt_lyapunov@eps=ε``.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from scipy.stats import bootstrap

from dpbench.metrics._core import crossings, normalised_error


def median_ci(values: np.ndarray, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Median of ``values [S]`` and its percentile-bootstrap ``level`` interval."""
    values = np.asarray(values, dtype=np.float64)
    med = float(np.median(values))
    if len(values) < 2 or np.ptp(values) == 0:
        return med, med, med
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap((values,), np.median, n_resamples=resamples, confidence_level=level,
                        method="percentile", random_state=np.random.default_rng(seed))
    return med, float(res.confidence_interval.low), float(res.confidence_interval.high)


def vpt_samples(pred: torch.Tensor, truth: torch.Tensor, threshold: float, dt: float,
                lyapunov: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-rollout VPT in Lyapunov times and the censored flags of ``pred, truth [S, H, D]``."""
    err = normalised_error(pred.double(), truth.double(), torch.ones(truth.shape[-1], dtype=torch.float64))
    steps, censored = crossings(err, threshold)
    return steps.double().numpy() * dt * lyapunov, censored.numpy()


def thresholds(config: Any) -> list[float]:
    """The primary ε first, then the other ``vpt_thresholds`` (comma-separated)."""
    extra = [float(x) for x in str(config.vpt_thresholds).replace(";", ",").split(",") if x.strip()]
    primary = float(config.vpt_threshold)
    return [primary] + [e for e in dict.fromkeys(extra) if e != primary]


def vpt(ctx: Any) -> dict[str, float]:
    """VPT median, 95 % interval, censored fraction and cap; VPT at the other thresholds."""
    lyap, dt = ctx.task.lyapunov_exponent, ctx.task.dt
    if not (lyap and dt):
        return {}
    r = ctx.rollouts
    cap = r.pred.shape[1] * dt * lyap
    out: dict[str, float] = {}
    for i, eps in enumerate(thresholds(ctx.config)):
        values, censored = vpt_samples(r.pred, r.truth, eps, dt, lyap)
        if i == 0:
            med, lo, hi = median_ci(values, int(ctx.config.bootstrap_resamples))
            out.update(vpt_lyapunov=med, vpt_ci_low=lo, vpt_ci_high=hi, vpt_censored=float(censored.mean()),
                       vpt_cap=float(cap), vpt_starts=float(len(values)),
                       rollout_lyapunov_times=float(cap))
            ctx.samples["vpt_lyapunov"] = values.tolist()
            ctx.samples["vpt_censored"] = censored.astype(float).tolist()
        else:
            out[f"vpt_lyapunov@eps={eps:g}"] = float(np.median(values))
    return out

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

import importlib
import math
from typing import Any, Iterable, Mapping

#: tensor primitives, imported from :mod:`dpbench.metrics._core` on first use (no torch at start-up)
_CORE = ("nrmse", "normalised_error", "crossings", "valid_steps", "vpt_lyapunov_times", "recall_scores")


def __getattr__(name: str) -> Any:
    if name not in _CORE:
        raise AttributeError(f"module 'dpbench.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module("dpbench.metrics._core"), name)
    globals()[name] = value
    return value


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


def format_number(x: float) -> str:
    """Three significant digits; 1000 ≤ |x| < 10⁶ as an integer; ``-`` when not finite."""
    if x is None or not math.isfinite(x):
        return "-"
    return format(x, ".0f" if 1000 <= abs(x) < 1e6 else ".3g")


#: a spread below this fraction of the mean is rounding noise (e.g. ``2.2e-16`` across
#: seeds that reach the same value) and prints as ``0``
NOISE_SPREAD = 1e-9


def format_mean_std(mean: float | None, std: float | None = None) -> str:
    """Compact ``mean ± std`` for tables: ``-`` when missing, three significant digits
    (:func:`format_number`); a spread below :data:`NOISE_SPREAD` × |mean| prints as ``0``."""
    if mean is None or not math.isfinite(mean):
        return "-"
    text = format_number(mean)
    if std is not None and math.isfinite(std):
        noise = std <= NOISE_SPREAD * abs(mean) or std == 0
        text += " ± " + ("0" if noise else format_number(std))
    return text

"""Valid prediction time (VPT), hardened.

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

from typing import Any

from dpbench.hookspecs import hookimpl
from dpbench.specs import MetricSpec

CITATION = "Pathak et al. 2018, PRL 120:024102; Vlachas et al. 2020, Neural Networks 126:191"


def _info(name: str, title: str, description: str, **kw: Any) -> MetricSpec:
    return MetricSpec(name, title, description, CITATION, higher_is_better=None, tasks=("forecast",),
                      needs=("rollouts",), gate="none", **{"table": "vpt", **kw})


SPECS = (
    MetricSpec("vpt_lyapunov", "VPT (LT)",
               "median valid prediction time of closed-loop rollouts; @eps=ε at other thresholds",
               CITATION, higher_is_better=True, compute="dpbench.metrics._vpt:vpt", tasks=("forecast",), needs=("rollouts",),
               tolerance=0.1, order=30),
    _info("vpt_ci_low", "VPT CI low", "percentile-bootstrap 95 % interval of the median VPT, low end", order=31),
    _info("vpt_ci_high", "VPT CI high", "percentile-bootstrap 95 % interval of the median VPT, high end",
          order=32),
    _info("vpt_censored", "censored", "share of rollouts that never crossed ε (right-censored at the cap)",
          order=33),
    _info("vpt_cap", "cap (LT)", "rollout length: the largest VPT a rollout can get", order=34),
    _info("vpt_starts", "rollouts", "number of rollouts VPT is the median of", order=35),
    _info("rollout_lyapunov_times", "rollout (Lyapunov times)", "rollout length in Lyapunov times (= vpt_cap)",
          table="none"),
)


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in SPECS:
        register(spec)

"""Valid prediction time (VPT), hardened: the registered specs (``vpt_lyapunov``, its
bootstrap interval, censored share, cap and start count). The definition, its references
(Pathak et al. 2018; Vlachas et al. 2020) and the computation are in
:mod:`dpbench.metrics._vpt`, imported only when a metric is computed.
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

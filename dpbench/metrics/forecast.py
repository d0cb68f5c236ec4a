"""Built-in forecast accuracy metrics: one-step, horizon and closed-loop NRMSE.

NRMSE = ``sqrt(mean_d MSE_d / var_d)`` with ``var_d`` the target's per-dimension variance
(Vlachas et al. 2020, Neural Networks 126:191, eq. 23); data are in units of the training
standard deviation. Rollout NRMSE is over the first ``[eval] rollout_steps`` steps of the
closed-loop rollouts (the ones VPT is measured on, :mod:`dpbench.metrics.vpt`).
"""
from __future__ import annotations

from dpbench.hookspecs import hookimpl
from dpbench.specs import MetricSpec

VLACHAS = "Vlachas et al. 2020, Neural Networks 126:191, eq. 23"


SPECS = (
    MetricSpec("nrmse_1step", "NRMSE 1-step", "one-step-ahead NRMSE on the test windows", VLACHAS,
               higher_is_better=False, compute="dpbench.metrics._forecast:nrmse_1step", tasks=("forecast",), tolerance=0.01, order=10),
    MetricSpec("nrmse_horizon", "NRMSE horizon", "NRMSE over all predicted steps (horizon > 1)", VLACHAS,
               higher_is_better=False, compute="dpbench.metrics._forecast:nrmse_horizon", tasks=("forecast",), tolerance=0.01, order=15),
    MetricSpec("nrmse_rollout", "NRMSE rollout", "NRMSE of closed-loop rollouts over rollout_steps", VLACHAS,
               higher_is_better=False, compute="dpbench.metrics._forecast:nrmse_rollout", tasks=("forecast",), needs=("rollouts",),
               tolerance=0.02, order=20),
    MetricSpec("nrmse84", "NRMSE84", "NRMSE after an 84-step free run (datasets with free_run_steps = 84)",
               "Jaeger & Haas 2004, Science 304:78", higher_is_better=False,
               compute="dpbench.metrics._forecast:nrmse_free_run", tasks=("forecast",), needs=("model",),
               tolerance=0.01, order=25),
    MetricSpec("rollout_steps", "rollout NRMSE steps", "steps the rollout NRMSE is measured over",
               "dpbench harness", higher_is_better=None, tasks=("forecast",), needs=("rollouts",),
               gate="none", table="none"),
)


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in SPECS:
        register(spec)

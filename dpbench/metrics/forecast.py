"""Built-in forecast accuracy metrics: one-step, horizon and closed-loop NRMSE.

NRMSE = ``sqrt(mean_d MSE_d / var_d)`` with ``var_d`` the target's per-dimension variance
(Vlachas et al. 2020, Neural Networks 126:191, eq. 23); data are in units of the training
standard deviation. Rollout NRMSE is over the first ``[eval] rollout_steps`` steps of the
closed-loop rollouts (the ones VPT is measured on, :mod:`dpbench.metrics.vpt`).
"""
from __future__ import annotations

from typing import Any

from dpbench.hookspecs import hookimpl
from dpbench.metrics import nrmse
from dpbench.specs import MetricSpec

VLACHAS = "Vlachas et al. 2020, Neural Networks 126:191, eq. 23"


def nrmse_1step(ctx: Any) -> float:
    """NRMSE of the first predicted step on the test windows."""
    return nrmse(ctx.predictions[:, :1], ctx.task.test.y[:, :1])


def nrmse_horizon(ctx: Any) -> dict[str, float]:
    """NRMSE over all ``horizon`` predicted steps (only for ``horizon > 1``)."""
    if ctx.task.output_steps < 2:
        return {}
    return {"nrmse_horizon": nrmse(ctx.predictions, ctx.task.test.y)}


def nrmse_rollout(ctx: Any) -> dict[str, float]:
    """NRMSE of the closed-loop rollouts over their first ``rollout_steps`` steps."""
    r = ctx.rollouts
    steps = min(int(ctx.config.rollout_steps), r.pred.shape[1])
    return {"nrmse_rollout": nrmse(r.pred[:, :steps], r.truth[:, :steps]), "rollout_steps": float(steps)}


SPECS = (
    MetricSpec("nrmse_1step", "NRMSE 1-step", "one-step-ahead NRMSE on the test windows", VLACHAS,
               higher_is_better=False, compute=nrmse_1step, tasks=("forecast",), tolerance=0.01, order=10),
    MetricSpec("nrmse_horizon", "NRMSE horizon", "NRMSE over all predicted steps (horizon > 1)", VLACHAS,
               higher_is_better=False, compute=nrmse_horizon, tasks=("forecast",), tolerance=0.01, order=15),
    MetricSpec("nrmse_rollout", "NRMSE rollout", "NRMSE of closed-loop rollouts over rollout_steps", VLACHAS,
               higher_is_better=False, compute=nrmse_rollout, tasks=("forecast",), needs=("rollouts",),
               tolerance=0.02, order=20),
    MetricSpec("rollout_steps", "rollout NRMSE steps", "steps the rollout NRMSE is measured over",
               "dpbench harness", higher_is_better=None, tasks=("forecast",), needs=("rollouts",),
               gate="none", table="none"),
)


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in SPECS:
        register(spec)

"""The computation of the built-in forecast NRMSE metrics (specs in :mod:`dpbench.metrics.forecast`)."""
from __future__ import annotations

from typing import Any

from dpbench.metrics._core import nrmse


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

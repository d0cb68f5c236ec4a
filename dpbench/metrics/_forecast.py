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


#: starts of :func:`free_run_nrmse` (Jaeger & Haas 2004 average 100 independent runs)
FREE_RUN_STARTS = 50


def free_run_nrmse(model: Any, task: Any, steps: int, starts: int, device: str) -> float:
    """NRMSE at the end of a free run: Jaeger & Haas 2004 (Science 304:78) NRMSE84 for
    ``steps = 84``. From ``starts`` evenly spaced test windows (teacher forcing over the
    window), the model runs closed-loop for ``steps`` steps; then
    ``sqrt(mean_s (ŷ_s(steps) − y_s(steps))² / σ²)`` with σ² the variance of the training
    series, which is 1 in dpbench's train-normalised units (Jaeger & Haas normalise by the
    variance of the original signal). Averaged over the predicted components."""
    from dpbench.rollout import closed_loop

    window = int(task.train.x.shape[1])
    pred, truth = closed_loop(model, task.test_series, window, task.target_index, steps, starts, device)
    if pred.shape[1] < steps:
        raise ValueError(f"test series too short for a {steps}-step free run")
    err = (pred[:, -1].double() - truth[:, -1].double()) ** 2  # variance 1: train-normalised
    return float(err.mean().sqrt())


def nrmse_free_run(ctx: Any) -> dict[str, float]:
    """``nrmse84`` where the dataset asks for it (``metadata["free_run_steps"] = 84``)."""
    free = ctx.task.metadata.get("free_run_steps")
    if not free:
        return {}
    return {f"nrmse{int(free)}": free_run_nrmse(ctx.model, ctx.task, int(free), FREE_RUN_STARTS, ctx.device)}

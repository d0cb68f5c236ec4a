"""The computation of the built-in recall metrics (specs in :mod:`dpbench.metrics.recall`)."""
from __future__ import annotations

from typing import Any

from dpbench.metrics._core import recall_scores


def tolerance_of(task: Any) -> float | None:
    """The regression tolerance described in the module docstring (``None`` for class tasks)."""
    tol = task.metadata.get("tolerance")
    if tol is None and task.loss == "mse" and task.baseline:
        tol = 0.1 * float(task.baseline) ** 0.5
    return tol


def recall_values(ctx: Any) -> dict[str, float]:
    """Accuracy and loss on the test split, and the task's trivial baseline."""
    task = ctx.task
    out = recall_scores(ctx.predictions, task.test.y, task.test.mask, task.loss, tolerance_of(task))
    if task.baseline is not None:
        out["baseline_" + ("cross_entropy" if task.loss == "ce" else "mse")] = float(task.baseline)
    return out

"""Build a model at a parameter budget by scaling its width hyper-parameter."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from dpbench.data import TaskData
from dpbench.specs import ModelSpec

MAX_WIDTH = 4096


@dataclass
class BuiltModel:
    """A model and how it was sized."""

    module: nn.Module
    hparams: dict[str, Any]
    param_count: int
    width: int | None
    budget_ok: bool

    def recounted(self, budget: int, tolerance: float) -> "BuiltModel":
        """The same model counted again (after a fit that chose, e.g., its number of delays)."""
        count = count_params(self.module)
        return replace(self, param_count=count, budget_ok=abs(count - budget) <= tolerance * budget)

    @property
    def fixed_count(self) -> int:
        """Elements of the module's floating-point buffers: fixed weights that are neither
        trained nor fitted (a reservoir's W, W_in, b), reported apart from the budget."""
        return count_fixed(self.module)


def count_params(module: nn.Module) -> int:
    """Trainable (or fitted) parameters: the ones the budget counts."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_fixed(module: nn.Module) -> int:
    """Elements of the floating-point buffers (fixed random weights; not in the budget)."""
    return sum(b.numel() for b in module.buffers() if b.is_floating_point())


def build(spec: ModelSpec, task: TaskData, hparams: dict[str, Any]) -> nn.Module:
    """Instantiate ``spec`` for ``task``'s shapes with ``hparams``."""
    return spec.build(
        input_size=task.input_size, input_steps=int(task.train.x.shape[1]),
        output_size=task.output_size, output_steps=task.output_steps, task=task.kind,
        metadata=task.metadata, **hparams,
    )


def build_at_budget(
    spec: ModelSpec, task: TaskData, hparams: dict[str, Any], budget: int, tolerance: float
) -> BuiltModel:
    """Build ``spec`` with the width that brings its parameter count closest to ``budget``.

    The width is searched by bisection (parameter counts grow with width). When the user
    fixed the width in ``hparams``, or the model has none, it is built as given.
    ``budget_ok`` says whether the count is within ``±tolerance`` of the budget.
    """
    def within(count: int) -> bool:
        return abs(count - budget) <= tolerance * budget

    if spec.width is None or spec.width in hparams:
        module = build(spec, task, hparams)
        count = count_params(module)
        width = hparams.get(spec.width) if spec.width else None
        return BuiltModel(module, dict(hparams), count, width, within(count))
    counts: dict[int, int] = {}

    def count_at(width: int) -> int:
        if width not in counts:
            counts[width] = count_params(build(spec, task, {**hparams, spec.width: width}))
        return counts[width]

    lo, hi = 1, 2
    while hi < MAX_WIDTH and count_at(hi) < budget:
        lo, hi = hi, hi * 2
    hi = min(hi, MAX_WIDTH)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_at(mid) < budget:
            lo = mid
        else:
            hi = mid
    width = min((lo, hi), key=lambda w: abs(count_at(w) - budget))
    final = {**hparams, spec.width: width}
    module = build(spec, task, final)
    count = count_params(module)
    return BuiltModel(module, final, count, width, within(count))

"""Output heads shared by the built-in models: hidden states → ``[B, T_out, D_out]``."""
from __future__ import annotations

import torch
from torch import nn


class OutputHead(nn.Module):
    """Map a sequence of hidden states to the task's outputs.

    ``forecast``: the last state predicts all ``output_steps`` future steps at once
    (direct multi-step, ``Linear(hidden, output_steps * output_size)``).
    ``recall``: each of the last ``output_steps`` states predicts its own step
    (``Linear(hidden, output_size)`` applied per step).

    Shapes: ``h [B, T, hidden]`` → ``[B, output_steps, output_size]``.
    """

    def __init__(self, hidden: int, output_size: int, output_steps: int, task: str):
        super().__init__()
        if task not in ("forecast", "recall"):
            raise ValueError(f"task {task!r} not in ('forecast', 'recall')")
        self.task, self.output_size, self.output_steps = task, output_size, output_steps
        per_state = output_size * (output_steps if task == "forecast" else 1)
        self.linear = nn.Linear(hidden, per_state)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.task == "forecast":
            return self.linear(h[:, -1]).view(h.shape[0], self.output_steps, self.output_size)
        if h.shape[1] < self.output_steps:
            raise ValueError(f"input has {h.shape[1]} steps, fewer than output_steps={self.output_steps}")
        return self.linear(h[:, h.shape[1] - self.output_steps:])

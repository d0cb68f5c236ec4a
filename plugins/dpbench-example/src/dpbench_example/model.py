"""The example model: the whole input window, flattened, through a two-layer perceptron
``x^{l+1} = f(W^l x^l)`` (seed eq. 1, ``f = tanh``, linear last layer).

Kept apart from :mod:`dpbench_example.plugin` so that registering the plugin (``dpbench
list``) imports no torch: the spec names ``"dpbench_example.model:WindowMLP"``.
"""
from __future__ import annotations

import torch
from torch import nn


class WindowMLP(nn.Module):
    """Flattened window → tanh hidden layer → every output step at once (seed eq. 1)."""

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int,
                 task: str = "forecast", hidden: int = 32):
        super().__init__()
        self.shape = (output_steps, output_size)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(input_steps * input_size, hidden), nn.Tanh(),
            nn.Linear(hidden, output_steps * output_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D_in]`` → ``[B, T_out, D_out]``."""
        return self.net(x).view(x.shape[0], *self.shape)

"""Time-delay feed-forward network: an MLP on the last ``delays`` input steps.

x^{l+1} = f(W^l x^l) per layer (seed eq. 1), fed with the delay embedding
(x_{t-d+1}, ..., x_t) — the seed's §4(i) use of FNNs as nonlinear autoregressive models
(Lapedes & Farber 1987).
"""
from __future__ import annotations

import torch
from torch import nn



class TimeDelayMLP(nn.Module):
    """MLP over the flattened last ``delays`` steps (``0``: the whole window).

    Shapes: ``x [B, T, D_in]`` →
    ``[B, output_steps, output_size]``; for both task kinds all outputs come from one
    flattened input vector.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, hidden: int = 64, layers: int = 2, delays: int = 0,
    ):
        super().__init__()
        self.delays = min(delays, input_steps) if delays > 0 else input_steps
        self.output_steps, self.output_size = output_steps, output_size
        body: list[nn.Module] = [nn.Linear(self.delays * input_size, hidden), nn.Tanh()]
        for _ in range(layers - 1):
            body += [nn.Linear(hidden, hidden), nn.Tanh()]
        body.append(nn.Linear(hidden, output_steps * output_size))
        self.net = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, x.shape[1] - self.delays:]
        return self.net(x.reshape(x.shape[0], -1)).view(x.shape[0], self.output_steps, self.output_size)


def build_fnn(**kwargs) -> TimeDelayMLP:
    return TimeDelayMLP(**kwargs)

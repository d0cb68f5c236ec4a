"""Recurrent baselines: Elman RNN, LSTM and GRU on torch's fused ``nn.RNN/LSTM/GRU``.

Elman RNN: h_t = tanh(W^{ih} x_t + W^{hh} h_{t-1}), y_t = W^{ho} h_t (seed eq. 2–3;
Elman 1990). LSTM: Hochreiter & Schmidhuber 1997. GRU: Cho et al. 2014. torch's modules
dispatch to cuDNN on GPU and oneDNN on CPU.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from dpbench.models._heads import OutputHead

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentModel(nn.Module):
    """A stacked ``cell`` network and an :class:`OutputHead`.

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, cell: str = "lstm", hidden: int = 64, layers: int = 1,
    ):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell {cell!r} not in {sorted(_CELLS)}")
        self.rnn = _CELLS[cell](input_size, hidden, num_layers=layers, batch_first=True)
        self.head = OutputHead(hidden, output_size, output_steps, task)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.head(h)


# module-level partials: picklable, so worker processes can receive the specs
build_rnn, build_lstm, build_gru = (partial(RecurrentModel, cell=c) for c in ("rnn", "lstm", "gru"))

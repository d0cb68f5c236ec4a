"""Dual-stage attention RNN (DA-RNN; Qin et al. 2017, IJCAI — the seed's ref. [54]).

Stage 1, input attention (Qin et al. eq. 8–10): at encoder step t the weight of driving
series k is α_t^k = softmax_k v_e^T tanh(W_e[h_{t−1}; s_{t−1}] + U_e x^k), where
x^k ∈ R^T is the whole k-th series; the encoder LSTM reads x̃_t = (α_t^1 x_t^1, …, α_t^n x_t^n)
(eq. 11).

Stage 2, temporal attention (eq. 12–14): β_t^i = softmax_i v_d^T tanh(W_d[d_{t−1}; s'_{t−1}]
+ U_d h_i), c_t = Σ_i β_t^i h_i; the decoder LSTM reads ỹ_{t−1} = w̃^T[y_{t−1}; c_{t−1}] + b̃
(eq. 15–16) and emits ŷ_t = W_v(W_y[d_t; c_t] + b_w) + b_v (eq. 22).

How inputs are used here:

* ``forecast``: the core puts exogenous columns first in ``x``; the last ``output_size``
  columns are the observed targets. The driving series are the exogenous columns when
  there are any (``input_size > output_size``), else all columns. The decoder first
  reads the observed target history y_1..y_T (as in the paper, where y_1..y_{T−1} are
  decoder inputs) and then runs ``output_steps`` further steps closed-loop, feeding back
  its own predictions.
* ``recall``: all input dims are driving series; the decoder starts from the encoder's
  last state and runs ``output_steps`` closed-loop steps (y_0 = 0), aligned with the last
  ``output_steps`` input steps.
"""
from __future__ import annotations

import torch
from torch import nn

from dpbench.models._attention_rnn import AdditiveScore, attend, initial_feedback


class InputAttention(nn.Module):
    """α_t^k = softmax_k v_e^T tanh(W_e[h; s] + U_e x^k) (Qin et al. eq. 8–9).

    ``series [B, n, T]`` (keys precomputed once), query ``[B, 2H]`` → ``[B, n]``.
    """

    def __init__(self, hidden: int, steps: int):
        super().__init__()
        self.score = AdditiveScore(2 * hidden, steps, steps)

    def keys(self, series: torch.Tensor) -> torch.Tensor:
        return self.score.keys(series)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(query, keys), dim=-1)


class DualStageAttentionRNN(nn.Module):
    """DA-RNN with LSTM encoder and decoder of ``hidden`` units (the width hparam).

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``; with
    ``diagnostics={}`` also ``"attention" [B, output_steps, T]`` (temporal attention of
    the emitted steps) and ``"input_attention" [B, T, n_driving]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, hidden: int = 64,
    ):
        super().__init__()
        if task not in ("forecast", "recall"):
            raise ValueError(f"task {task!r} not in ('forecast', 'recall')")
        self.task, self.output_size, self.output_steps = task, output_size, output_steps
        self.history = task == "forecast" and output_size <= input_size
        exogenous = input_size - output_size if self.history else 0
        self.driving = slice(0, exogenous) if exogenous > 0 else slice(0, input_size)
        n_driving = exogenous if exogenous > 0 else input_size
        self.input_attention = InputAttention(hidden, input_steps)
        self.encoder = nn.LSTMCell(n_driving, hidden)
        self.temporal = AdditiveScore(2 * hidden, hidden, hidden)
        self.feed = nn.Linear(output_size + hidden, output_size)  # ỹ = w̃^T[y; c] + b̃
        self.decoder = nn.LSTMCell(output_size, hidden)
        self.out = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Linear(hidden, output_size))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """Encoder states ``[B, T, H]``, input weights ``[B, T, n]``, last ``(h, s)``."""
        drive = x[..., self.driving]
        keys = self.input_attention.keys(drive.transpose(1, 2))
        h = x.new_zeros(x.shape[0], self.encoder.hidden_size)
        state = (h, torch.zeros_like(h))
        states, weights = [], []
        for t in range(x.shape[1]):
            alpha = self.input_attention(torch.cat(state, -1), keys)
            state = self.encoder(alpha * drive[:, t], state)
            states.append(state[0])
            weights.append(alpha)
        return torch.stack(states, 1), torch.stack(weights, 1), state

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        enc, input_weights, state = self.encode(x)
        keys = self.temporal.keys(enc)
        y_prev = initial_feedback(x, self.output_size, self.task)
        context = torch.zeros_like(enc[:, 0])
        observed = x[..., x.shape[-1] - self.output_size:] if self.history else x[:, :0]
        first = max(observed.shape[1] - 1, 0)  # step whose output is the first emitted one
        outputs, alphas = [], []
        for t in range(first + self.output_steps):
            if t < observed.shape[1]:  # decoder input = observed history, never targets
                y_prev = observed[:, t]
            beta, new_context = attend(self.temporal(torch.cat(state, -1), keys), enc)
            state = self.decoder(self.feed(torch.cat([y_prev, context], -1)), state)
            context = new_context
            y = self.out(torch.cat([state[0], context], -1))
            if t >= first:
                outputs.append(y)
                alphas.append(beta)
                y_prev = y
        if diagnostics is not None:
            diagnostics["attention"] = torch.stack(alphas, 1).detach()
            diagnostics["input_attention"] = input_weights.detach()
        return torch.stack(outputs, 1)

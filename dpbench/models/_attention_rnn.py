"""Recurrent encoder–decoders with and without attention (seed §3.1, eq. 4–11).

One class, :class:`EncoderDecoder`, covers four models that differ only in the encoder
direction, the alignment score and where the context enters the decoder:

* ``seq2seq`` — no attention: the decoder starts from the encoder's last state and sees
  only its own previous output, y_t = f2(s_{t-1}, y_{t-1}) (seed eq. 4–5; Sutskever et al.
  2014; Cho et al. 2014).
* ``bahdanau`` style — bidirectional encoder (eq. 6); the context c_t = Σ_i α_ti h_i
  (eq. 8), α_t = softmax_i score(s_{t-1}, h_i) (eq. 9) is computed from the *previous*
  decoder state and fed into the recurrence, y_t = f2(s_{t-1}, y_{t-1}, c_t) (eq. 7);
  the score is additive (eq. 10; Bahdanau et al. 2015) or cosine (eq. 11).
* ``luong`` style — unidirectional encoder; the score uses the *current* decoder state,
  h̃_t = tanh(W_c[c_t; s_t]), y_t = W_o h̃_t, with input feeding of h̃_{t-1} (Luong et al.
  2015, eq. 5 and §3.3).

Decoding is always closed-loop: no targets enter ``forward``; the decoder's input at step
t is its own output y_{t-1} (y_0: the last observed target values for ``forecast``,
zeros for ``recall``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RNN_CELLS = {"rnn": (nn.RNN, nn.RNNCell), "lstm": (nn.LSTM, nn.LSTMCell), "gru": (nn.GRU, nn.GRUCell)}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def check_cell(cell: str) -> None:
    if cell not in RNN_CELLS:
        raise ValueError(f"cell {cell!r} not in {sorted(RNN_CELLS)}")


def state_h(state: State) -> torch.Tensor:
    """The output part of a cell state (``h`` of an LSTM's ``(h, c)``), ``[B, H]``."""
    return state[0] if isinstance(state, tuple) else state


def initial_feedback(x: torch.Tensor, output_size: int, task: str) -> torch.Tensor:
    """y_0 for the closed-loop decoder, ``[B, output_size]``.

    ``forecast``: the last observed target values (the core puts exogenous columns first,
    so the targets are the trailing ``output_size`` columns of ``x``); ``recall``: zeros.
    """
    if task == "forecast" and output_size <= x.shape[-1]:
        return x[:, -1, x.shape[-1] - output_size:]
    return x.new_zeros(x.shape[0], output_size)


def attend(scores: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax alignment (seed eq. 9) and context (eq. 8).

    Shapes: ``scores [B, T]``, ``values [B, T, E]`` → ``(alpha [B, T], c [B, E])``.
    """
    alpha = torch.softmax(scores, dim=-1)
    return alpha, torch.bmm(alpha.unsqueeze(1), values).squeeze(1)


class AdditiveScore(nn.Module):
    """score(s, h_i) = v_a^T tanh(W_a s + U_a h_i) (seed eq. 10, W_a[s; h] split in two;
    Bahdanau et al. 2015, appendix A.1.2). ``keys`` precomputes U_a h once per sequence."""

    def __init__(self, query_size: int, key_size: int, attn_size: int):
        super().__init__()
        self.w = nn.Linear(query_size, attn_size, bias=False)
        self.u = nn.Linear(key_size, attn_size)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        """``h [B, T, E]`` → ``[B, T, A]``."""
        return self.u(h)

    def forward(self, s: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``s [B, Q]``, ``keys [B, T, A]`` → scores ``[B, T]``."""
        return self.v(torch.tanh(keys + self.w(s).unsqueeze(1))).squeeze(-1)


class CosineScore(nn.Module):
    """score(s, h_i) = β(s) · cos(W_k s, h_i) (seed eq. 11) with a learned key strength
    β = softplus(w_β^T s + b_β) ≥ 0 that sharpens the softmax, as the NTM's content
    addressing (Graves et al. 2014, eq. 5–6)."""

    def __init__(self, query_size: int, key_size: int, attn_size: int = 0):
        super().__init__()
        self.key = nn.Linear(query_size, key_size)
        self.strength = nn.Linear(query_size, 1)

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        """Unit-normalised encoder states, ``[B, T, E]``."""
        return F.normalize(h, dim=-1)

    def forward(self, s: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        k = F.normalize(self.key(s), dim=-1)
        beta = F.softplus(self.strength(s))
        return beta * torch.bmm(keys, k.unsqueeze(-1)).squeeze(-1)


class DotScore(nn.Module):
    """score(s_t, h_i) = s_t^T h_i (Luong et al. 2015, eq. 8 'dot')."""

    def __init__(self, query_size: int, key_size: int, attn_size: int = 0):
        super().__init__()
        if query_size != key_size:
            raise ValueError("dot score needs equal decoder and encoder sizes")

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def forward(self, s: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(keys, s.unsqueeze(-1)).squeeze(-1)


class GeneralScore(DotScore):
    """score(s_t, h_i) = s_t^T W_a h_i (Luong et al. 2015, eq. 8 'general')."""

    def __init__(self, query_size: int, key_size: int, attn_size: int = 0):
        super().__init__(query_size, query_size)
        self.w = nn.Linear(key_size, query_size, bias=False)

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        return self.w(h)


SCORES = {"additive": AdditiveScore, "cosine": CosineScore, "dot": DotScore, "general": GeneralScore}


class EncoderDecoder(nn.Module):
    """RNN encoder (seed eq. 4 / eq. 6) and a closed-loop RNN decoder (eq. 5 / eq. 7).

    Args:
        cell: ``rnn`` | ``lstm`` | ``gru`` for both encoder and decoder.
        hidden: units per encoder direction and of the decoder (the width hparam).
        score: ``None`` (no attention), or a key of :data:`SCORES`.
        style: ``"bahdanau"`` (bidirectional encoder, context from s_{t-1} enters the
            recurrence) or ``"luong"`` (unidirectional encoder, context from s_t enters
            the output, input feeding).

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``; with
    ``diagnostics={}`` also ``diagnostics["attention"] [B, output_steps, T]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, cell: str = "lstm", hidden: int = 64, score: str | None = None,
        style: str = "bahdanau",
    ):
        super().__init__()
        check_cell(cell)
        if style not in ("bahdanau", "luong"):
            raise ValueError(f"style {style!r} not in ('bahdanau', 'luong')")
        if task not in ("forecast", "recall"):
            raise ValueError(f"task {task!r} not in ('forecast', 'recall')")
        self.task, self.output_size, self.output_steps = task, output_size, output_steps
        self.style = style if score else "none"
        bidirectional = self.style == "bahdanau"
        encoder_cls, cell_cls = RNN_CELLS[cell]
        self.encoder = encoder_cls(input_size, hidden, batch_first=True, bidirectional=bidirectional)
        key_size = hidden * (2 if bidirectional else 1)
        # s_0 from the encoder (eq. 5: s_0 = h_T); bidirectional: tanh(W[→h_T; ←h_1]).
        self.bridge = nn.Linear(key_size, hidden) if bidirectional else None
        self.score = SCORES[score](hidden, key_size, hidden) if score else None
        feed = {"none": 0, "bahdanau": key_size, "luong": hidden}[self.style]
        self.cell = cell_cls(output_size + feed, hidden)
        self.combine = nn.Linear(key_size + hidden, hidden) if self.style == "luong" else None
        head_in = hidden + (key_size if self.style == "bahdanau" else 0)
        self.out = nn.Linear(head_in, output_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Encoder states ``[B, T, E]`` and the decoder's initial state."""
        h, last = self.encoder(x)
        if self.bridge is not None:  # bidirectional: summaries of both directions
            hidden = h.shape[-1] // 2
            summary = torch.cat([h[:, -1, :hidden], h[:, 0, hidden:]], dim=-1)
            s0 = torch.tanh(self.bridge(summary))
            return h, ((s0, torch.zeros_like(s0)) if isinstance(last, tuple) else s0)
        if isinstance(last, tuple):
            return h, (last[0][-1], last[1][-1])
        return h, last[-1]

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        enc, state = self.encode(x)
        keys = self.score.keys(enc) if self.score is not None else None
        y_prev = initial_feedback(x, self.output_size, self.task)
        feed = enc.new_zeros(x.shape[0], self.cell.hidden_size) if self.style == "luong" else None
        outputs, alphas = [], []
        for _ in range(self.output_steps):
            if self.style == "bahdanau":
                alpha, context = attend(self.score(state_h(state), keys), enc)
                state = self.cell(torch.cat([y_prev, context], -1), state)
                y = self.out(torch.cat([state_h(state), context], -1))
            elif self.style == "luong":
                state = self.cell(torch.cat([y_prev, feed], -1), state)
                alpha, context = attend(self.score(state_h(state), keys), enc)
                feed = torch.tanh(self.combine(torch.cat([context, state_h(state)], -1)))
                y = self.out(feed)
            else:
                state = self.cell(y_prev, state)
                y = self.out(state_h(state))
                alpha = None
            outputs.append(y)
            alphas.append(alpha)
            y_prev = y
        if diagnostics is not None and self.score is not None:
            diagnostics["attention"] = torch.stack(alphas, 1).detach()
        return torch.stack(outputs, 1)

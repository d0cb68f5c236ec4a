"""Differentiable plasticity: a recurrent network whose weights keep a Hebbian trace.

Miconi, Stanley & Clune 2018 (ICML), "Differentiable plasticity"; seed §3.3, eq. 12–13.
Each recurrent connection i → j has a fixed weight ``w_ij`` (trained by gradient descent)
and a plastic part ``α_ij H_ij(t)``, with ``α_ij`` trained and the trace ``H`` updated
by the network's own activity while it runs (seed eq. 12; the input enters as a
non-plastic drive ``W_in x_t + b``, as in Miconi et al.'s recurrent networks):

    y_j(t) = tanh( Σ_i (w_ij + α_ij H_ij(t)) y_i(t−1) + [W_in x_t + b]_j )

and, with ``rule="hebb"`` (seed eq. 13),

    H_ij(t+1) = η y_i(t−1) y_j(t) + (1 − η) H_ij(t);

or, with ``rule="oja"`` (Oja 1982, the variant Miconi et al. 2018 also train),

    H_ij(t+1) = H_ij(t) + η y_j(t) (y_i(t−1) − y_j(t) H_ij(t)).

``i`` is the presynaptic unit (its activity one step earlier), ``j`` the postsynaptic one.
The plasticity rate ``η = sigmoid(η_logit)`` is one learned scalar kept in (0, 1), so the
Hebbian trace stays a convex combination of products of tanh outputs and |H_ij| ≤ 1 (Oja's
rule has no such bound; the trace is never clipped). The trace starts at zero for every sequence (window) and is differentiated through by BPTT.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from dpbench.models._heads import OutputHead

RULES = ("hebb", "oja")


def hebb_update(trace: torch.Tensor, pre: torch.Tensor, post: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """Seed eq. 13: ``H_ij ← η pre_i post_j + (1 − η) H_ij``.

    Shapes: ``trace [B, N, N]``, ``pre [B, N]``, ``post [B, N]``, ``eta`` scalar → ``[B, N, N]``.
    """
    return eta * pre[:, :, None] * post[:, None, :] + (1 - eta) * trace


def oja_update(trace: torch.Tensor, pre: torch.Tensor, post: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """Oja's rule (Oja 1982; Miconi et al. 2018): ``H_ij ← H_ij + η post_j (pre_i − post_j H_ij)``.

    Shapes as :func:`hebb_update`.
    """
    post_j = post[:, None, :]
    return trace + eta * post_j * (pre[:, :, None] - post_j * trace)


_UPDATES = {"hebb": hebb_update, "oja": oja_update}


class PlasticRNN(nn.Module):
    """Plastic recurrent network (seed eq. 12–13) and an :class:`OutputHead`.

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``. With
    ``forward(x, diagnostics={})`` it stores ``"trace_norm"`` ``[B, T]``: the Frobenius norm
    of ``α ∘ H(t)`` used at each step (how much the plastic part changes the weights).
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, hidden: int = 64, rule: str = "hebb", eta: float = 0.1,
    ):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"rule {rule!r} not in {RULES}")
        if not 0.0 < eta < 1.0:
            raise ValueError(f"eta={eta} must lie in (0, 1)")
        self.rule, self.hidden = rule, hidden
        bound = 1.0 / math.sqrt(hidden)
        self.input = nn.Linear(input_size, hidden)
        self.w = nn.Parameter(torch.empty(hidden, hidden).uniform_(-bound, bound))
        self.alpha = nn.Parameter(torch.empty(hidden, hidden).uniform_(-bound, bound))
        self.eta_logit = nn.Parameter(torch.tensor(math.log(eta / (1.0 - eta))))
        self.head = OutputHead(hidden, output_size, output_steps, task)

    @property
    def eta(self) -> torch.Tensor:
        """The plasticity rate η ∈ (0, 1) (scalar tensor)."""
        return torch.sigmoid(self.eta_logit)

    def step(
        self, drive: torch.Tensor, y: torch.Tensor, trace: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of eq. 12 then eq. 13 (or Oja).

        Shapes: ``drive [B, N]`` (``W_in x_t + b``), ``y [B, N]`` (``y(t−1)``),
        ``trace [B, N, N]`` (``H(t)``) → ``(y(t) [B, N], H(t+1) [B, N, N])``.
        """
        plastic = (y[:, :, None] * (self.alpha * trace)).sum(1)  # Σ_i y_i α_ij H_ij
        y_new = torch.tanh(y @ self.w + plastic + drive)
        return y_new, _UPDATES[self.rule](trace, y, y_new, self.eta)

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        batch, steps = x.shape[0], x.shape[1]
        drives = self.input(x)
        y = x.new_zeros(batch, self.hidden)
        trace = x.new_zeros(batch, self.hidden, self.hidden)
        states, norms = [], []
        for t in range(steps):
            if diagnostics is not None:
                norms.append(torch.linalg.matrix_norm(self.alpha * trace).detach())
            y, trace = self.step(drives[:, t], y, trace)
            states.append(y)
        if diagnostics is not None:
            diagnostics["trace_norm"] = torch.stack(norms, dim=1)
        return self.head(torch.stack(states, dim=1))


def build_plastic_rnn(**kwargs) -> PlasticRNN:
    return PlasticRNN(**kwargs)

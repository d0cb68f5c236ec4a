"""The seed's differentiable "if": a learned gate mixes two learned branches.

Seed §2: "if a is satisfied do y(x), otherwise do z(x)" becomes, with the condition
``a = σ(W x + b)`` the output of a network ending in a linear map and a sigmoid,

    out(x) = a(x) · y(x) + (1 − a(x)) · z(x).

Here ``x`` is the delay embedding of the last ``delays`` input steps (as the time-delay
MLP, seed eq. 1 and §4(i)), the branches ``y`` and ``z`` are one-hidden-layer tanh MLPs,
and the gate is ``σ(W u + b)`` on the embedding ``u`` (``gate_hidden=0``, the seed's
literal linear form) or on a tanh layer of width ``gate_hidden`` (default). This is a
two-expert mixture (Jacobs et al. 1991) without recurrence, memory or a numerical model,
so its family is ``feedforward``.

Gate trace: ``forward(x, diagnostics={})`` stores ``"gate"`` ``[B, T_out]``: one gate per
output step (forecast: per predicted step, all from the embedding of the last ``delays``
inputs; recall: per answered step, from the embedding ending at that input step).

Metric (:func:`gate_regime_metrics`): on a dataset whose raw series carries
``metadata["regimes"]`` (e.g. ``switching-delay``) the gate of every test prediction is
paired with the regime at the predicted raw step, and the *correlation ratio*
η = sqrt(Σ_k n_k (ḡ_k − ḡ)² / Σ_i (g_i − ḡ)²) (Pearson 1903; Fisher's η) is reported as
``gate_regime_corr``: the fraction of the gate's spread explained by the regime (0: the
gate ignores the regime, 1: the gate is a function of the regime). With two regimes it
equals |Pearson r| between gate and regime indicator; unlike r it also works for three or
more regimes, which a single gate can still separate by level.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F



def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Module:
    """``Linear → tanh → Linear`` (``hidden=0``: a single ``Linear``)."""
    if hidden <= 0:
        return nn.Linear(inputs, outputs)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, outputs))


class SoftSwitch(nn.Module):
    """``a·y(u) + (1 − a)·z(u)`` on delay embeddings ``u`` (seed §2).

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, hidden: int = 64, gate_hidden: int = 16, delays: int = 0,
    ):
        super().__init__()
        if task not in ("forecast", "recall"):
            raise ValueError(f"task {task!r} not in ('forecast', 'recall')")
        self.task, self.output_size, self.output_steps = task, output_size, output_steps
        self.delays = min(delays, input_steps) if delays > 0 else input_steps
        embed = self.delays * input_size
        per_position = output_steps if task == "forecast" else 1
        self.branch_y = _mlp(embed, hidden, per_position * output_size)
        self.branch_z = _mlp(embed, hidden, per_position * output_size)
        self.gate = _mlp(embed, gate_hidden, per_position)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Delay embeddings ``[B, P, delays * D]`` of the positions that produce outputs:
        input steps ``p − delays + 1 .. p`` (zeros before step 0) for each position ``p``.

        Forecast: ``P = 1``, the window's last step; recall: ``P = output_steps``, the last
        ``output_steps`` input steps.
        """
        steps = x.shape[1]
        count = 1 if self.task == "forecast" else self.output_steps
        if steps < count:
            raise ValueError(f"input has {steps} steps, fewer than output_steps={count}")
        padded = F.pad(x, (0, 0, self.delays - 1, 0))
        windows = padded.unfold(1, self.delays, 1)[:, steps - count:]  # [B, P, D, delays]
        return windows.transpose(2, 3).reshape(x.shape[0], count, -1)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gate and branches: ``a [B, T_out]``, ``y [B, T_out, D_out]``, ``z [B, T_out, D_out]``."""
        u = self.embed(x)
        shape = (x.shape[0], self.output_steps, self.output_size)
        a = torch.sigmoid(self.gate(u)).reshape(x.shape[0], self.output_steps)
        return a, self.branch_y(u).reshape(shape), self.branch_z(u).reshape(shape)

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        a, y, z = self.parts(x)
        if diagnostics is not None:
            diagnostics["gate"] = a.detach()
        return a[..., None] * y + (1 - a[..., None]) * z


def build_soft_switch(**kwargs) -> SoftSwitch:
    return SoftSwitch(**kwargs)


def correlation_ratio(values: np.ndarray, groups: np.ndarray) -> float:
    """Fisher's correlation ratio η of ``values [n]`` by integer ``groups [n]`` (0 when
    ``values`` is constant)."""
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    total = float(((values - values.mean()) ** 2).sum())
    if total <= 0.0:
        return 0.0
    between = sum(
        float((groups == k).sum()) * (values[groups == k].mean() - values.mean()) ** 2
        for k in np.unique(groups)
    )
    return float(np.sqrt(between / total))


def regimes_at_predictions(metadata: Mapping[str, Any], n: int, window: int, steps: int) -> np.ndarray | None:
    """Regime ``[n, steps]`` at the raw step each test prediction refers to.

    Test window ``i`` covers raw steps ``[s + i, s + i + window)`` with ``s`` the start of
    the test split; its forecast step ``j`` is raw step ``s + i + window + j``. ``None``
    when the dataset records no regimes.
    """
    regimes = metadata.get("regimes")
    if regimes is None:
        return None
    regimes = np.asarray(regimes)
    start = int(metadata["split_bounds"][2][0])
    index = start + window + np.arange(n)[:, None] + np.arange(steps)[None, :]
    if index.max() >= len(regimes):
        raise ValueError(f"regimes has {len(regimes)} steps, test predictions reach {index.max()}")
    return regimes[index]


def gate_regime_metrics(model: nn.Module, task, diagnostics: Mapping[str, Any]) -> dict[str, float]:
    """``gate_regime_corr``: correlation ratio between the test gates and the regime at
    each predicted step (module docstring); ``{}`` for datasets without regimes or
    recall tasks."""
    gate = diagnostics.get("gate")
    if gate is None or task.kind != "forecast":
        return {}
    gate = np.asarray(torch.as_tensor(gate).detach().cpu(), dtype=np.float64)
    regimes = regimes_at_predictions(task.metadata, gate.shape[0], int(task.test.x.shape[1]), gate.shape[1])
    if regimes is None:
        return {}
    return {"gate_regime_corr": correlation_ratio(gate.ravel(), regimes.ravel())}

"""The tensor primitives of the built-in metrics (torch): NRMSE, the normalised error and
its threshold crossings (VPT), recall scores. Re-exported lazily by :mod:`dpbench.metrics`
so that loading the registry imports no torch."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nrmse(pred: torch.Tensor, target: torch.Tensor, variance: torch.Tensor | None = None) -> float:
    """NRMSE of ``pred`` vs ``target`` (``[..., D]``), normalised by ``variance [D]``
    (default: the target's own per-dimension variance)."""
    pred, target = pred.double().reshape(-1, pred.shape[-1]), target.double().reshape(-1, target.shape[-1])
    var = target.var(dim=0, unbiased=False) if variance is None else variance.double()
    var = torch.where(var > 1e-12, var, torch.ones_like(var))
    return float(torch.sqrt(((pred - target) ** 2).mean(dim=0).div(var).mean()))


def normalised_error(pred: torch.Tensor, target: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``e(t)`` for ``pred, target [S, H, D]`` and per-dimension ``std [D]`` → ``[S, H]``."""
    return torch.sqrt((((pred - target) / std) ** 2).mean(dim=-1))


def crossings(error: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """First step at which ``error [S, H]`` exceeds ``threshold`` or is not finite
    (``NaN > ε`` is false, so a NaN rollout would otherwise count as valid forever), and
    whether the rollout never crossed (right-censored at ``H``) → ``([S] long, [S] bool)``."""
    over = ~(error <= threshold)  # NaN and ±inf count as crossing
    censored = ~over.any(dim=1)
    first = torch.where(censored, torch.full_like(censored, error.shape[1], dtype=torch.long),
                        over.float().argmax(dim=1))
    return first.long(), censored


def valid_steps(error: torch.Tensor, threshold: float) -> torch.Tensor:
    """Steps before ``error [S, H]`` first exceeds ``threshold`` (H if it never does) → ``[S]``."""
    return crossings(error, threshold)[0]


def vpt_lyapunov_times(error: torch.Tensor, threshold: float, dt: float, lyapunov: float) -> torch.Tensor:
    """Valid prediction time of each rollout in Lyapunov times: steps·dt·λ → ``[S]``."""
    return valid_steps(error, threshold).double() * dt * lyapunov


def recall_scores(logits_or_pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
                  loss: str, tolerance: float | None = None) -> dict[str, float]:
    """Recall metrics.

    ``loss="ce"``: ``logits [n, T, C]``, ``target [n, T]`` → ``accuracy`` on masked steps,
    ``cross_entropy`` (nats, mean over all steps). ``loss="mse"``: ``pred, target [n, T, D]``
    → ``mse`` and, with ``tolerance``, ``accuracy`` = share of scored outputs within it.
    """
    if loss == "ce":
        ce = F.cross_entropy(logits_or_pred.reshape(-1, logits_or_pred.shape[-1]).double(), target.reshape(-1))
        hit = logits_or_pred.argmax(dim=-1) == target
        if mask is not None:
            hit = hit[mask]
        return {"accuracy": float(hit.double().mean()), "cross_entropy": float(ce)}
    err = (logits_or_pred.double() - target.double())
    out = {"mse": float((err ** 2).mean())}
    if tolerance is not None:
        ok = err.abs() <= tolerance
        if mask is not None:
            ok = ok[mask]
        out["accuracy"] = float(ok.double().mean())
    return out

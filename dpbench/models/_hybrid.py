"""Hybrid numerical–neural model: a differentiable ODE with learnable physics plus a
neural residual in the vector field.

Seed §5(iii): "the combination of a numerical model (differential or difference
equations) with a differentiable component (e.g., a neural network)", as in Zygote
(Innes et al. 2019, seed ref. [57]), DiffTaichi (Hu et al. 2019, [58]) and differentiable
physics for learning physical parameters (de Avila Belbute-Peres et al. 2018, [59]). The
state ``s`` (physical units) follows

    ds/dt = f_θ(s) + r_φ(s),

with ``f_θ`` a parametric system whose physical parameters ``θ`` are learned and ``r_φ``
an MLP residual (Rackauckas et al. 2020, "universal differential equations"). For
``system="lorenz"`` (Lorenz 1963), ``θ = (σ, ρ, β)`` and

    f_θ(x, y, z) = (σ y − σ x,  ρ x − x z − y,  x y − β z),

whose seven terms are named ``sigma_y, sigma_x, rho_x, xz, y, xy, beta_z``;
``drop_term=<name>`` removes one of them (a deliberately incomplete model whose missing
physics the residual must supply). ``r_φ(s) = (std / dt) · MLP((s − mean) / std)``: the
MLP sees the normalised state and outputs "train standard deviations per sample step",
so a unit output is the size of a typical one-step change; its last layer starts near
zero (the model starts as pure physics).

Forecast: the last input state (un-normalised with the train mean and std from the
dataset's metadata) is integrated by ``torchdiffeq.odeint`` (Chen et al. 2018) over
``output_steps`` sampling steps of ``dt`` with ``substeps`` fixed steps per sample
(``solver="rk4"``, default) or adaptively (``solver="dopri5"``); gradients flow through
the solver's operations. Parameters are learned in log space, ``θ = θ_0 exp(u)`` (positive,
and one optimiser step moves each by a similar relative amount) from the fixed prior guess
``θ_0`` of the system (Lorenz: σ=5, ρ=20, β=2), never from the true values.
The residual can absorb errors of ``θ``: report recovered parameters from
``residual=false`` runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from dpbench.models.hybrid import PRIORS


SOLVERS = ("rk4", "dopri5", "euler", "midpoint")


def lorenz_terms(s: torch.Tensor, p: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, torch.Tensor]]:
    """The terms of Lorenz-63 (Lorenz 1963) as ``name -> (component, value [B])``."""
    x, y, z = s.unbind(-1)
    return {
        "sigma_y": (0, p["sigma"] * y), "sigma_x": (0, -p["sigma"] * x),
        "rho_x": (1, p["rho"] * x), "xz": (1, -x * z), "y": (1, -y),
        "xy": (2, x * y), "beta_z": (2, -p["beta"] * z),
    }


@dataclass(frozen=True)
class System:
    """A parametric ODE: its state columns, parameters with their prior guesses, terms."""

    columns: tuple[str, ...]
    prior: Mapping[str, float]
    terms: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], dict[str, tuple[int, torch.Tensor]]]
    term_names: tuple[str, ...]


SYSTEMS: dict[str, System] = {
    "lorenz": System(
        columns=("x", "y", "z"), prior=PRIORS["lorenz"],
        terms=lorenz_terms,
        term_names=("sigma_y", "sigma_x", "rho_x", "xz", "y", "xy", "beta_z"),
    ),
}


class VectorField(nn.Module):
    """``ds/dt = f_θ(s) + r_φ(s)`` in physical units; ``s [B, D] -> [B, D]``."""

    def __init__(
        self, system: System, drop_term: str, residual: bool, hidden: int,
        mean: torch.Tensor, std: torch.Tensor, dt: float,
    ):
        super().__init__()
        self.system, self.drop_term = system, drop_term
        self.log_scale = nn.ParameterDict({k: nn.Parameter(torch.zeros(())) for k in system.prior})
        self.register_buffer("prior", torch.tensor([system.prior[k] for k in system.prior]))
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.dt = dt
        self.residual: nn.Module | None = None
        if residual:
            dim = len(system.columns)
            last = nn.Linear(hidden, dim)
            with torch.no_grad():
                last.weight.mul_(1e-3)
                last.bias.zero_()
            self.residual = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                          nn.Tanh(), last)

    def parameters_hat(self) -> dict[str, torch.Tensor]:
        """The current physical parameters ``θ = θ_0 exp(u)`` (scalar tensors)."""
        return {k: self.prior[i] * torch.exp(self.log_scale[k]) for i, k in enumerate(self.system.prior)}

    def physics(self, s: torch.Tensor) -> torch.Tensor:
        """``f_θ(s)`` without the dropped term; ``s [B, D] -> [B, D]``."""
        parts: list[list[torch.Tensor]] = [[] for _ in self.system.columns]
        for name, (component, value) in self.system.terms(s, self.parameters_hat()).items():
            if name != self.drop_term:
                parts[component].append(value)
        return torch.stack([sum(p) if p else torch.zeros_like(s[..., 0]) for p in parts], dim=-1)

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        field = self.physics(s)
        if self.residual is not None:
            field = field + self.residual((s - self.mean) / self.std) * (self.std / self.dt)
        return field


class HybridODE(nn.Module):
    """Integrate :class:`VectorField` from the last input state (module docstring).

    Shapes: ``x [B, T, D]`` (normalised) → ``[B, output_steps, D]`` (normalised).
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, metadata: Mapping[str, Any] | None = None, system: str = "lorenz",
        residual: bool = True, drop_term: str = "none", hidden: int = 32,
        solver: str = "rk4", substeps: int = 2, dt: float = 0.0,
    ):
        super().__init__()
        if system not in SYSTEMS:
            raise ValueError(f"system {system!r} not in {sorted(SYSTEMS)}")
        spec = SYSTEMS[system]
        if task != "forecast":
            raise ValueError("the hybrid model only forecasts (task='forecast')")
        if drop_term not in ("none",) + spec.term_names:
            raise ValueError(f"drop_term {drop_term!r} not in {('none',) + spec.term_names}")
        if solver not in SOLVERS:
            raise ValueError(f"solver {solver!r} not in {SOLVERS}")
        if substeps < 1:
            raise ValueError(f"substeps={substeps} must be >= 1")
        meta = dict(metadata or {})
        dim = len(spec.columns)
        columns = meta.get("columns")
        if input_size != dim or output_size != dim or (columns is not None and tuple(columns) != spec.columns):
            raise ValueError(
                f"system {system!r} needs all of {spec.columns} observed and no exogenous input "
                f"(got columns {columns}, input_size={input_size}, output_size={output_size})"
            )
        step = float(dt) if dt > 0 else meta.get("dt")
        if step is None or step <= 0:
            raise ValueError("the hybrid model needs the sampling step: metadata['dt'] or hparam dt > 0")
        mean = torch.as_tensor(meta.get("train_mean", [0.0] * dim), dtype=torch.float32)
        std = torch.as_tensor(meta.get("train_std", [1.0] * dim), dtype=torch.float32)
        self.output_steps, self.dt = output_steps, float(step)
        self.solver, self.substeps = solver, substeps
        self.field = VectorField(spec, drop_term, residual, hidden, mean, std, self.dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        field = self.field
        s0 = x[:, -1] * field.std + field.mean
        times = torch.arange(self.output_steps + 1, dtype=x.dtype, device=x.device) * self.dt
        options = {"step_size": self.dt / self.substeps} if self.solver != "dopri5" else None
        from torchdiffeq import odeint  # imported on use: listing never loads it

        path = odeint(field, s0, times, method=self.solver, options=options,
                      rtol=1e-6, atol=1e-6)
        return ((path[1:] - field.mean) / field.std).transpose(0, 1)


def build_hybrid(**kwargs) -> HybridODE:
    return HybridODE(**kwargs)


def hybrid_metrics(model: nn.Module, task, diagnostics: Mapping[str, Any]) -> dict[str, float]:
    """``<p>_hat`` for every physical parameter and, where the truth is known,
    ``<p>_rel_err = |p_hat − p| / |p|`` against the parameters the data were generated
    with (``metadata["parameters"]``; under ``lorenz:drift`` that is ρ before the drift).
    The keys are registered metrics (:func:`dpbench.models.hybrid.parameter_metrics`)."""
    truth = {k: float(v) for k, v in task.metadata.get("parameters", {}).items()}
    out: dict[str, float] = {}
    for name, value in model.field.parameters_hat().items():
        out[f"{name}_hat"] = float(value.detach())
        if name in truth and truth[name] != 0:
            out[f"{name}_rel_err"] = abs(out[f"{name}_hat"] - truth[name]) / abs(truth[name])
    return out

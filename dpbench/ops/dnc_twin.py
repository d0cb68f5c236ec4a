"""Twin training: is the fused DNC the same learner as the reference, or only the same function?

Two DNCs start from the same initial parameters and are trained on the *same* batches with the
same optimiser (the :mod:`dpbench.ops.dnc_learn` configuration: curriculum lesson 0, Adam,
global-norm clipping). After each step the relative parameter distance
``d_t = ‖θ_a − θ_b‖₂ / ‖θ_a‖₂`` is recorded. Three pairs answer three questions:

* ``float64``: reference vs fused in double precision. Equal equations give ``d_t`` at the
  float64 rounding level (≈ 1e-16 · growth), a wrong gradient gives ``d_t`` ≫ 1e-8 within
  a few steps;
* ``float32``: reference vs fused in single precision — how fast the two implementations'
  different summation orders drift apart under training;
* ``control``: the reference against itself with every initial parameter multiplied by
  ``1 + ε·z`` (z standard normal, ε = 1e-7 ≈ one float32 rounding): the drift any one-ulp
  perturbation undergoes.

Training a recurrent net is sensitive to initial conditions: ``d_t`` grows exponentially
(the finite-time Lyapunov growth of the optimiser's trajectory in parameter space, the
"butterfly effect" of training, cf. Summers & Dinneen 2021, "Nondeterminism and instability
in neural network optimization", ICML). If the ``float32`` pair drifts like the ``control``
pair, the fused op's rounding is one more one-ulp perturbation: beyond the step where
``d_t`` reaches O(1), reference and fused runs of one seed are as different as two seeds, and
only a comparison over seeds (:func:`dpbench.ops.dnc_learn.over_seeds`) measures a difference
in time to accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from dpbench.ops.dnc_learn import LearnConfig, Task, build_model, train_step

PAIRS = {   # name -> ((impl, dtype, ε), (impl, dtype, ε))
    "float64": (("reference", torch.float64, 0.0), ("fused", torch.float64, 0.0)),
    "float32": (("reference", torch.float32, 0.0), ("fused", torch.float32, 0.0)),
    "control": (("reference", torch.float32, 0.0), ("reference", torch.float32, 1e-7)),
}


@dataclass
class TwinResult:
    pair: str
    steps: list = field(default_factory=list)       # recorded steps
    distance: list = field(default_factory=list)    # d_t at those steps
    loss_a: list = field(default_factory=list)
    loss_b: list = field(default_factory=list)


def _perturbed(model: torch.nn.Module, eps: float, seed: int) -> torch.nn.Module:
    """Multiply every parameter by ``1 + eps·z`` (z ~ N(0, 1), own generator) in place."""
    if eps:
        g = torch.Generator().manual_seed(seed + 20_000)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + eps * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().double() for p in model.parameters()])


def twin(cfg: LearnConfig, pair: str, steps: int, every: int = 1,
         log: Optional[Callable[[str], None]] = None) -> TwinResult:
    """Train the ``pair`` (a key of :data:`PAIRS`) for ``steps`` steps on identical batches of
    ``cfg``'s task at lesson 0; records ``d_t`` every ``every`` steps (and at step 1)."""
    if pair not in PAIRS:
        raise ValueError(f"twin pair {pair!r} not in {tuple(PAIRS)}")
    task = Task(cfg)
    models, opts = [], []
    for impl, dtype, eps in PAIRS[pair]:
        torch.manual_seed(cfg.seed)   # the same initial parameters for both
        m = _perturbed(build_model(cfg, task, impl).to(dtype), eps, cfg.seed)
        models.append(m)
        opts.append(torch.optim.Adam(m.parameters(), lr=cfg.lr))
    rng = np.random.default_rng(cfg.seed)
    out = TwinResult(pair=pair)
    for step in range(1, steps + 1):
        x, y, mask = task.batch(cfg.batch, 0, rng)
        losses = [train_step(m, opt, cfg.clip, x.to(dtype), y, mask)
                  for m, opt, (_, dtype, _) in zip(models, opts, PAIRS[pair])]
        if step == 1 or step % every == 0 or step == steps:
            a, b = _flat(models[0]), _flat(models[1])
            out.steps.append(step)
            out.distance.append(((a - b).norm() / a.norm()).item())
            out.loss_a.append(losses[0])
            out.loss_b.append(losses[1])
            if log:
                log(f"twin {pair} step {step} d {out.distance[-1]:.3e} loss "
                    f"{losses[0]:.5f} / {losses[1]:.5f}")
    return out


def growth_steps(result: TwinResult, level: float = 1e-2) -> Optional[int]:
    """The first recorded step with ``d_t ≥ level`` (None when never): where the twins have
    become different runs."""
    return next((s for s, d in zip(result.steps, result.distance) if d >= level), None)

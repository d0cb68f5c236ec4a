"""Largest Lyapunov exponent of a deterministic step map by Benettin's method.

Benettin, Galgani, Giorgilli & Strelcyn 1980 (Meccanica 15:9): follow a reference orbit
and a tangent vector v; each step propagates v with the linearised map and renormalises
it to unit length; λ₁ = (1 / (n·dt)) Σ ln |J v|. The linearised map is applied as a
directional finite difference ``(step(x + εv) − step(x)) / ε`` (ε ≪ attractor size),
so any ``step`` (a map, an RK4 step of a flow, a delay system's history map, a PDE
integrator) can be checked without writing its Jacobian. A batch of independent orbits
is averaged to shrink the finite-time fluctuation.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Step = Callable[[np.ndarray], np.ndarray]


def largest_lyapunov(step: Step, x0: np.ndarray, n_steps: int, dt: float = 1.0,
                     transient: int = 0, eps: float = 1e-7, seed: int = 0) -> np.ndarray:
    """Benettin estimate of the largest exponent per time unit, one per orbit.

    Args:
        step: maps a batch of states ``[B, D]`` to the states one step (``dt`` time units)
            later, ``[B, D]``.
        x0: initial states ``[B, D]`` (ideally on or near the attractor).
        n_steps: steps averaged over (after ``transient`` steps that also align ``v``).
        eps: finite-difference size of the tangent perturbation (absolute).
        seed: seed of the random initial tangent vectors.

    Returns:
        ``[B]`` estimates (per time unit); average them for the final figure.
    """
    x = np.array(x0, dtype=np.float64)
    v = np.random.default_rng(seed).standard_normal(x.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    total = np.zeros(x.shape[0])
    for k in range(transient + n_steps):
        fx = step(x)
        jv = (step(x + eps * v) - fx) / eps
        growth = np.linalg.norm(jv, axis=1)
        if k >= transient:
            total += np.log(growth)
        v = jv / growth[:, None]
        x = fx
    return total / (n_steps * dt)

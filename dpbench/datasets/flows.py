"""Chaotic flows, integrated accurately and sampled every ``dt``.

Lorenz-63: dx/dt = σ(y − x), dy/dt = x(ρ − z) − y, dz/dt = xy − βz with σ=10, ρ=28,
β=8/3 (Lorenz 1963, J. Atmos. Sci. 20:130). Largest Lyapunov exponent 0.906 per time unit
(Sprott 2003, Chaos and Time-Series Analysis, table A.1; sampled at dt=0.025 as in
Gauthier et al. 2021, Nat. Commun. 12:5564).

Protocol: a random initial condition near the attractor (from the seed), a discarded
transient of ``transient`` time units, then ``length`` samples; integration by scipy's
DOP853 with rtol=atol=1e-10 (checked against a fine-step RK4 reference in the tests).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.integrate import solve_ivp

from dpbench.data import Trajectory
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec

RTOL = ATOL = 1e-10


def lorenz_rhs(sigma: float, rho: float, beta: float) -> Callable[[float, np.ndarray], np.ndarray]:
    """Right-hand side of Lorenz-63 for ``solve_ivp``."""
    def rhs(t: float, s: np.ndarray) -> np.ndarray:
        x, y, z = s
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])
    return rhs


def integrate(rhs, x0: np.ndarray, dt: float, length: int, transient: float) -> np.ndarray:
    """Integrate ``rhs`` from ``x0``: drop ``transient`` time units, return ``[length, D]``."""
    if transient > 0:
        x0 = solve_ivp(rhs, (0.0, transient), x0, method="DOP853", rtol=RTOL, atol=ATOL).y[:, -1]
    t_eval = np.arange(length) * dt
    sol = solve_ivp(rhs, (0.0, t_eval[-1]), x0, method="DOP853", t_eval=t_eval, rtol=RTOL, atol=ATOL)
    if not sol.success:
        raise RuntimeError(f"integration failed: {sol.message}")
    return sol.y.T.copy()


def generate_lorenz(params: dict[str, Any], seed: int) -> Trajectory:
    """Lorenz-63 trajectory ``[length, 3]`` (columns x, y, z)."""
    rng = np.random.default_rng(seed)
    x0 = np.array([1.0, 1.0, 25.0]) + rng.normal(scale=5.0, size=3)
    rhs = lorenz_rhs(params["sigma"], params["rho"], params["beta"])
    values = integrate(rhs, x0, params["dt"], int(params["length"]), params["transient"])
    return Trajectory(values=values, columns=["x", "y", "z"])


LORENZ = DatasetSpec(
    name="lorenz", kind="forecast",
    description="Lorenz-63 chaotic flow (3 variables), DOP853 at 1e-10, sampled at dt=0.025",
    citation="Lorenz 1963, J. Atmos. Sci. 20:130; lambda=0.906 (Sprott 2003)",
    generate=generate_lorenz,
    defaults={"length": 4000, "dt": 0.025, "sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0,
              "transient": 50.0},
    param_docs={
        "length": "number of samples (split 70/15/15 into train/val/test)",
        "dt": "sampling step in time units",
        "sigma": "Prandtl number σ", "rho": "Rayleigh number ρ", "beta": "geometric factor β",
        "transient": "time units integrated and discarded before sampling",
    },
    metadata={"dt": 0.025, "lyapunov_exponent": 0.906, "equations": "Lorenz 1963",
              "parameters": {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}},
)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(LORENZ)

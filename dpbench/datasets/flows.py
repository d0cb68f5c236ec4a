"""Chaotic flows, integrated accurately and sampled every ``dt``.

Lorenz-63: dx/dt = σ(y − x), dy/dt = x(ρ − z) − y, dz/dt = xy − βz with σ=10, ρ=28,
β=8/3 (Lorenz 1963, J. Atmos. Sci. 20:130). Largest Lyapunov exponent 0.906 per time unit
(Sprott 2003, Chaos and Time-Series Analysis, table A.1; sampled at dt=0.025 as in
Gauthier et al. 2021, Nat. Commun. 12:5564).

Lorenz ``drift``: ρ is constant up to the first test sample (the last 15 % of the series,
:func:`dpbench.data.split_bounds`) and then changes linearly with time, reaching
ρ + drift at the last sample; train and validation data never see the change. The
per-sample ρ is returned as ``metadata["rho"]`` ``[length]``. The Lyapunov exponent in
the metadata holds for the stationary part (and for drift = 0).

Rössler: dx/dt = −y − z, dy/dt = x + a y, dz/dt = b + z(x − c), a = b = 0.2, c = 5.7
(Rössler 1976, Phys. Lett. A 57:397); largest Lyapunov exponent 0.0714 per time unit
(Sprott 2003, table A.1).

Protocol: a random initial condition near the attractor (from the seed), a discarded
transient of ``transient`` time units, then ``length`` samples (another seed gives an
independent trajectory: both specs set ``independent_trajectories``, except Lorenz with
``drift``, which is not stationary); integration by scipy's
DOP853 with rtol=atol=1e-10 (checked against a fine-step RK4 reference in the tests).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from dpbench.data import Trajectory, split_bounds
from dpbench.datasets._common import COMMON_DOCS, need, positive_ints, system_metadata
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec

RTOL = ATOL = 1e-10
LORENZ_REFERENCE = {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}
ROSSLER_REFERENCE = {"a": 0.2, "b": 0.2, "c": 5.7}
Rhs = Callable[[float, np.ndarray], np.ndarray]


def lorenz_rhs(sigma: float, rho: float | Callable[[float], float], beta: float) -> Rhs:
    """Right-hand side of Lorenz-63 for ``solve_ivp``; ``rho`` may be a function of t.

    Works on a state ``[3]`` or a batch of states ``[3, B]``."""
    rho_t = rho if callable(rho) else (lambda t: rho)

    def rhs(t: float, s: np.ndarray) -> np.ndarray:
        x, y, z = s
        return np.array([sigma * (y - x), x * (rho_t(t) - z) - y, x * y - beta * z])
    return rhs


def rossler_rhs(a: float, b: float, c: float) -> Rhs:
    """Right-hand side of the Rössler system for ``solve_ivp`` (state ``[3]`` or ``[3, B]``)."""
    def rhs(t: float, s: np.ndarray) -> np.ndarray:
        x, y, z = s
        return np.array([-y - z, x + a * y, b + z * (x - c)])
    return rhs


def integrate(rhs: Rhs, x0: np.ndarray, dt: float, length: int, transient: float,
              t0: float = 0.0) -> np.ndarray:
    """Integrate ``rhs`` from ``x0``: drop ``transient`` time units, return ``[length, D]``
    sampled at ``t0 + k dt`` (``t0`` matters for non-autonomous right-hand sides)."""
    from scipy.integrate import solve_ivp

    if transient > 0:
        x0 = solve_ivp(rhs, (t0 - transient, t0), x0, method="DOP853", rtol=RTOL, atol=ATOL).y[:, -1]
    t_eval = t0 + np.arange(length) * dt
    if length == 1:
        return np.asarray(x0, dtype=np.float64)[None, :].copy()
    sol = solve_ivp(rhs, (t_eval[0], t_eval[-1]), x0, method="DOP853", t_eval=t_eval,
                    rtol=RTOL, atol=ATOL)
    if not sol.success:
        raise RuntimeError(f"integration failed: {sol.message}")
    return sol.y.T.copy()


def _flow_settings(name: str, params: dict[str, Any]) -> tuple[int, float, float]:
    (length,) = positive_ints(name, params, "length", minimum=2)
    dt, transient = float(params["dt"]), float(params["transient"])
    need(name, dt > 0 and transient >= 0, f"need dt > 0 and transient >= 0, got {dt}, {transient}")
    return length, dt, transient


def rho_schedule(rho: float, drift: float, length: int, dt: float) -> Callable[[float], float]:
    """ρ(t): constant until the first test sample, then linear to ρ + drift at the last."""
    t_start = split_bounds(length)[2][0] * dt
    t_end = (length - 1) * dt
    span = max(t_end - t_start, dt)
    return lambda t: rho + drift * min(max(t - t_start, 0.0), span) / span


def generate_lorenz(params: dict[str, Any], seed: int) -> Trajectory:
    """Lorenz-63 trajectory ``[length, 3]`` (columns x, y, z); ``metadata["rho"]`` ``[length]``."""
    length, dt, transient = _flow_settings("lorenz", params)
    rng = np.random.default_rng(seed)
    x0 = np.array([1.0, 1.0, 25.0]) + rng.normal(scale=5.0, size=3)
    drift = float(params["drift"])
    rho = rho_schedule(float(params["rho"]), drift, length, dt) if drift else float(params["rho"])
    rhs = lorenz_rhs(params["sigma"], rho, params["beta"])
    values = integrate(rhs, x0, dt, length, transient)
    rho_t = rho if callable(rho) else (lambda t: rho)
    rho_samples = np.array([rho_t(k * dt) for k in range(length)])
    meta = system_metadata(params, LORENZ_REFERENCE, dt)
    # a drifting series is not stationary: fresh trajectories would not share its statistics
    meta["independent_trajectories"] = not drift
    return Trajectory(values=values, columns=["x", "y", "z"], metadata={**meta, "rho": rho_samples})


def generate_rossler(params: dict[str, Any], seed: int) -> Trajectory:
    """Rössler trajectory ``[length, 3]`` (columns x, y, z)."""
    length, dt, transient = _flow_settings("rossler", params)
    rng = np.random.default_rng(seed)
    x0 = np.array([1.0, -1.0, 0.0]) + rng.normal(scale=1.0, size=3) * np.array([1.0, 1.0, 0.0])
    rhs = rossler_rhs(params["a"], params["b"], params["c"])
    values = integrate(rhs, x0, dt, length, transient)
    need("rossler", bool(np.all(np.abs(values) < 1e3)), "trajectory escapes for these a, b, c")
    return Trajectory(values=values, columns=["x", "y", "z"],
                      metadata=system_metadata(params, ROSSLER_REFERENCE, dt))


FLOW_DOCS = {k: COMMON_DOCS[k] for k in ("length", "dt", "transient")}

LORENZ = DatasetSpec(
    name="lorenz", kind="forecast",
    description="Lorenz-63 chaotic flow (3 variables), DOP853 at 1e-10, sampled at dt=0.025",
    citation="Lorenz 1963, J. Atmos. Sci. 20:130; lambda=0.906 (Sprott 2003)",
    generate=generate_lorenz,
    defaults={"length": 4000, "dt": 0.025, "sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0,
              "transient": 50.0, "drift": 0.0},
    param_docs={
        **FLOW_DOCS,
        "sigma": "Prandtl number σ", "rho": "Rayleigh number ρ", "beta": "geometric factor β",
        "drift": "ρ ramps linearly from ρ to ρ+drift over the test segment (last 15%); "
                 "constant before",
    },
    metadata={"dt": 0.025, "lyapunov_exponent": 0.906, "equations": "Lorenz 1963",
              "parameters": LORENZ_REFERENCE},
    independent_trajectories=True,
)

ROSSLER = DatasetSpec(
    name="rossler", kind="forecast",
    description="Rossler chaotic flow (a=b=0.2, c=5.7), DOP853 at 1e-10, sampled at dt=0.1",
    citation="Rossler 1976, Phys. Lett. A 57:397; lambda=0.0714 (Sprott 2003, table A.1)",
    generate=generate_rossler,
    defaults={"length": 4000, "dt": 0.1, "a": 0.2, "b": 0.2, "c": 5.7, "transient": 100.0},
    param_docs={**FLOW_DOCS, "a": "Rossler parameter a", "b": "Rossler parameter b",
                "c": "Rossler parameter c"},
    metadata={"dt": 0.1, "lyapunov_exponent": 0.0714, "equations": "Rossler 1976",
              "parameters": ROSSLER_REFERENCE},
    independent_trajectories=True,
)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(LORENZ)
    register(ROSSLER)

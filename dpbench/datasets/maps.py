"""Chaotic maps (discrete time, ``dt = 1`` iteration).

* Logistic map x_{t+1} = r x_t (1 − x_t) (May 1976, Nature 261:459). At r = 4 the map is
  conjugate to the tent map and its Lyapunov exponent is exactly ln 2 ≈ 0.693.
* Hénon map x_{t+1} = 1 − a x_t² + y_t, y_{t+1} = b x_t (Hénon 1976, Commun. Math. Phys.
  50:69), a = 1.4, b = 0.3, largest Lyapunov exponent ≈ 0.419 (Sprott 2003, Chaos and
  Time-Series Analysis, table A.1).

Protocol: a random initial condition from the seed, ``transient`` discarded iterations,
then ``length`` samples. The exponents are re-derived from these step functions in
``tests/test_lyapunov.py``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from dpbench.data import Trajectory
from dpbench.datasets._common import COMMON_DOCS, need, positive_ints, system_metadata
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec


def logistic_step(r: float) -> Callable[[np.ndarray], np.ndarray]:
    """x ``[..., 1]`` → r x (1 − x)."""
    return lambda s: r * s * (1.0 - s)


def henon_step(a: float, b: float) -> Callable[[np.ndarray], np.ndarray]:
    """(x, y) ``[..., 2]`` → (1 − a x² + y, b x)."""
    def step(s: np.ndarray) -> np.ndarray:
        x, y = s[..., 0], s[..., 1]
        return np.stack([1.0 - a * x * x + y, b * x], axis=-1)
    return step


def iterate(step: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, length: int,
            transient: int) -> np.ndarray:
    """Apply ``step`` ``transient`` times, then record ``length`` states ``[length, D]``."""
    x = np.asarray(x0, dtype=np.float64)
    for _ in range(transient):
        x = step(x)
    out = np.empty((length, x.shape[-1]))
    for t in range(length):
        out[t] = x
        x = step(x)
    return out


def generate_logistic(params: dict[str, Any], seed: int) -> Trajectory:
    """Logistic-map series ``[length, 1]`` (column x)."""
    (length,) = positive_ints("logistic", params, "length")
    (transient,) = positive_ints("logistic", params, "transient", minimum=0)
    r = float(params["r"])
    need("logistic", 0.0 < r <= 4.0, f"r={r} must be in (0, 4] to keep x in [0, 1]")
    x0 = np.random.default_rng(seed).uniform(0.05, 0.95, size=1)
    values = iterate(logistic_step(r), x0, length, transient)
    if not np.all(np.isfinite(values)) or np.ptp(values[length // 2:]) < 1e-9:
        raise ValueError(f"logistic: orbit from seed {seed} collapsed onto a fixed point")
    return Trajectory(values=values, columns=["x"],
                      metadata=system_metadata(params, {"r": 4.0}, 1.0))


def generate_henon(params: dict[str, Any], seed: int) -> Trajectory:
    """Hénon-map series ``[length, 2]`` (columns x, y)."""
    (length,) = positive_ints("henon", params, "length")
    (transient,) = positive_ints("henon", params, "transient", minimum=0)
    x0 = np.random.default_rng(seed).uniform(-0.1, 0.1, size=2)
    values = iterate(henon_step(float(params["a"]), float(params["b"])), x0, length, transient)
    need("henon", bool(np.all(np.isfinite(values))) and np.abs(values).max() < 1e3,
         f"orbit escapes to infinity for a={params['a']}, b={params['b']}")
    return Trajectory(values=values, columns=["x", "y"],
                      metadata=system_metadata(params, {"a": 1.4, "b": 0.3}, 1.0))


MAP_DOCS = {"length": COMMON_DOCS["length"], "transient": "iterations discarded before sampling"}


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name="logistic", kind="forecast",
        description="logistic map x' = r x (1 - x), r=4 (fully chaotic, lambda = ln 2)",
        citation="May 1976, Nature 261:459",
        generate=generate_logistic,
        defaults={"length": 4000, "r": 4.0, "transient": 100},
        param_docs={**MAP_DOCS, "r": "growth rate r (chaotic near 4)"},
        metadata={"dt": 1.0, "lyapunov_exponent": math.log(2.0), "parameters": {"r": 4.0},
                  "equations": "x_{t+1} = r x_t (1 - x_t) (May 1976)",
                  "lyapunov_note": "exact ln 2 at r = 4 only"},
        independent_trajectories=True,
    ))
    register(DatasetSpec(
        name="henon", kind="forecast",
        description="Henon map (a=1.4, b=0.3), 2 variables, lambda ~ 0.419",
        citation="Henon 1976, Commun. Math. Phys. 50:69; lambda=0.419 (Sprott 2003)",
        generate=generate_henon,
        defaults={"length": 4000, "a": 1.4, "b": 0.3, "transient": 100},
        param_docs={**MAP_DOCS, "a": "Henon parameter a", "b": "Henon parameter b"},
        metadata={"dt": 1.0, "lyapunov_exponent": 0.419, "parameters": {"a": 1.4, "b": 0.3},
                  "equations": "x' = 1 - a x^2 + y, y' = b x (Henon 1976)",
                  "lyapunov_note": "for the default a, b only"},
        independent_trajectories=True,
    ))

"""NARMA systems: non-autonomous, driven by an exogenous input u (seed §4).

NARMA-N (Atiya & Parlos 2000, IEEE Trans. Neural Netw. 11:697, eq. for N = 10):
y(t+1) = α y(t) + β y(t) Σ_{i=0}^{N−1} y(t−i) + γ u(t−N+1) u(t) + δ,  u(t) ~ U[0, 0.5] i.i.d.

* ``narma10``: α = 0.3, β = 0.05, γ = 1.5, δ = 0.1 (Atiya & Parlos 2000).
* ``narma30``: α = 0.2, β = 0.004, γ = 1.5, δ = 0.001 — the 30th-order variant of Jaeger
  2003 (Adaptive nonlinear system identification with echo state networks, NIPS 15). The
  other variant in the literature (β = 0.04) is reachable with ``beta=0.04``.

Protocol: y(t) = 0 for the first N steps, ``transient`` discarded steps, then ``length``
samples of (u, y); u is an exogenous column (always observed, never predicted). Some input
draws make the recursion diverge: a draw whose |y| exceeds ``bound`` (or is not finite)
is rejected and the input redrawn from a derived seed ``SeedSequence([seed, attempt])``,
attempt = 1, 2, … up to ``max_redraws`` (deterministic; the number of rejected draws is
``metadata["redraws"]``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dpbench.data import Trajectory
from dpbench.datasets._common import COMMON_DOCS, derived_rng, need, positive_ints
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec


def narma_response(u: np.ndarray, order: int, alpha: float, beta: float, gamma: float,
                   delta: float, bound: float) -> np.ndarray | None:
    """y ``[len(u)]`` driven by u ``[len(u)]``; ``None`` when |y| exceeds ``bound``."""
    n = len(u)
    y = np.zeros(n)
    window = 0.0  # Σ_{i=0}^{N−1} y(t−i), kept as a running sum
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(order - 1, n - 1):
            y_next = alpha * y[t] + beta * y[t] * window + gamma * u[t - order + 1] * u[t] + delta
            if not abs(y_next) <= bound:  # also catches nan
                return None
            y[t + 1] = y_next
            window += y_next - y[t + 1 - order]
    return y


def generate_narma(params: dict[str, Any], seed: int, order: int, name: str) -> Trajectory:
    """(u, y) series ``[length, 2]``; u is exogenous."""
    (length,) = positive_ints(name, params, "length", minimum=2)
    (transient,) = positive_ints(name, params, "transient", minimum=0)
    (max_redraws,) = positive_ints(name, params, "max_redraws", minimum=0)
    bound = float(params["bound"])
    need(name, bound > 0, f"bound={bound} must be > 0")
    coeffs = [float(params[k]) for k in ("alpha", "beta", "gamma", "delta")]
    total = order + transient + length
    for attempt in range(max_redraws + 1):
        u = derived_rng(seed, attempt).uniform(0.0, float(params["u_max"]), size=total)
        y = narma_response(u, order, *coeffs, bound=bound)
        if y is not None:
            keep = slice(order + transient, total)
            values = np.stack([u[keep], y[keep]], axis=1)
            meta = {"dt": 1.0, "redraws": attempt, "order": order,
                    "parameters": dict(zip(("alpha", "beta", "gamma", "delta"), coeffs))}
            return Trajectory(values=values, columns=["u", "y"], exogenous=["u"], metadata=meta)
    need(name, False, f"all {max_redraws + 1} input draws diverged (|y| > {bound}); "
         f"lower beta/gamma or raise max_redraws")
    raise AssertionError  # unreachable


def generate_narma10(params: dict[str, Any], seed: int) -> Trajectory:
    return generate_narma(params, seed, 10, "narma10")


def generate_narma30(params: dict[str, Any], seed: int) -> Trajectory:
    return generate_narma(params, seed, 30, "narma30")


NARMA_DOCS = {
    "length": COMMON_DOCS["length"], "transient": "steps discarded after the zero start",
    "alpha": "coefficient α of y(t)", "beta": "coefficient β of y(t)·Σ y(t−i)",
    "gamma": "coefficient γ of u(t−N+1)·u(t)", "delta": "constant δ",
    "u_max": "input u ~ U[0, u_max]",
    "bound": "a draw with |y| above this is divergent and redrawn",
    "max_redraws": "redraws allowed before giving up",
}


def _spec(order: int, coeffs: dict[str, float], citation: str, generate) -> DatasetSpec:
    return DatasetSpec(
        name=f"narma{order}", kind="forecast",
        description=f"NARMA-{order}: nonlinear system driven by an exogenous input u ~ U[0,0.5]",
        citation=citation, generate=generate,
        defaults={"length": 4000, "transient": 200, **coeffs, "u_max": 0.5, "bound": 10.0,
                  "max_redraws": 20},
        param_docs=NARMA_DOCS,
        metadata={"dt": 1.0, "order": order, "parameters": coeffs, "exogenous_input": "u",
                  "equations": f"y(t+1) = alpha y(t) + beta y(t) sum_{{i<{order}}} y(t-i) "
                               f"+ gamma u(t-{order - 1}) u(t) + delta"},
    )


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(_spec(10, {"alpha": 0.3, "beta": 0.05, "gamma": 1.5, "delta": 0.1},
                   "Atiya & Parlos 2000, IEEE Trans. Neural Netw. 11:697", generate_narma10))
    register(_spec(30, {"alpha": 0.2, "beta": 0.004, "gamma": 1.5, "delta": 0.001},
                   "Jaeger 2003, NIPS 15 (30th-order NARMA, beta=0.004)", generate_narma30))

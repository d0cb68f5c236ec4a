"""Delay systems: Mackey–Glass and a map with several time delays (seed §4).

Mackey–Glass (Mackey & Glass 1977, Science 197:287):
dx/dt = β x(t−τ) / (1 + x(t−τ)ⁿ) − γ x(t), β = 0.2, γ = 0.1, n = 10, τ = 17 (the
chaotic setting of Jaeger & Haas 2004, Science 304:78).
Protocol: constant history x(t) = x₀ for t ≤ 0 (x₀ ~ U[0.5, 1.5] from the seed); classical
RK4 with step h = dt / substeps, where τ / h must be an integer so that x(t−τ) and
x(t+h−τ) are grid values; the half-step delayed value x(t+h/2−τ) is the cubic Hermite
interpolant of the two neighbouring grid values and their stored derivatives (4th-order,
matching RK4). ``transient`` time units are discarded, then every ``substeps``-th grid value
is sampled (Δt = dt = 1 by default). The tests compare this with an independent
method-of-steps integration (DOP853 with dense output, one delay interval at a time).
Largest Lyapunov exponent: 0.0052 per time unit, our Benettin estimate on the RK4 history
map (16 orbits × 10⁴ time units, 0.00516 ± 0.00007; the often quoted 0.0055 agrees within
6 %); see docs/datasets.md for the command.

Delay map (seed §4, "difference equations with multiple time delays"):
x_t = r s_t (1 − s_t), s_t = w₁ x_{t−d₁} + w₂ x_{t−d₂} + w₃ x_{t−d₃},
weights ≥ 0 normalised to sum 1, so s_t ∈ [0, 1] and x_t ∈ [0, r/4] — bounded for every
draw; with r = 4 it is a logistic map fed by a convex mix of three delayed states (a
3-lag generalisation of May 1976). At the defaults (d = 1, 3, 7; w = 0.8, 0.15, 0.05) it is
chaotic: largest exponent ≈ 0.266 per step (our Benettin estimate, re-checked in the tests;
many other weightings settle on periodic orbits).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dpbench.data import Trajectory
from dpbench.datasets._common import (COMMON_DOCS, lagged_logistic, need, positive_ints,
                                      system_metadata)
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec

MG_REFERENCE = {"tau": 17.0, "beta": 0.2, "gamma": 0.1, "n": 10.0}
#: Benettin estimate on the RK4 history map (16 orbits x 10^4 time units: 0.00516 ± 0.00007)
MG_LYAPUNOV = 0.0052
DELAY_MAP_REFERENCE = {"d1": 1, "d2": 3, "d3": 7, "w1": 0.8, "w2": 0.15, "w3": 0.05, "r": 4.0}
#: Benettin estimate at the defaults (16 orbits x 3000 iterations: 0.266)
DELAY_MAP_LYAPUNOV = 0.266


class MackeyGlass:
    """RK4 on a uniform grid with a ring buffer of the last ``m = τ/h`` states.

    The state may be a float (one orbit; fastest) or an array ``[B]`` (a batch of orbits,
    used for Lyapunov estimates). ``history`` holds ``x`` at the ``m + 1`` grid times
    t−τ … t, ``slopes`` the matching dx/dt values."""

    def __init__(self, x0, tau: float, beta: float, gamma: float, n: float, h: float):
        m = tau / h
        if abs(m - round(m)) > 1e-9 or round(m) < 1:
            raise ValueError(f"tau/h = {m} must be a positive integer")
        self.m, self.h = int(round(m)), h
        self.beta, self.gamma, self.n = beta, gamma, n
        self.history = [x0] * (self.m + 1)
        self.slopes = [0.0 * x0] * (self.m + 1)  # right derivatives; history: 0
        self.pos = 0  # index of the oldest entry (time t−τ)
        self.count = 0  # steps taken; the slope jumps at t = 0 (end of the history)

    def feedback(self, x_delayed):
        """β x(t−τ) / (1 + x(t−τ)ⁿ)."""
        return self.beta * x_delayed / (1.0 + x_delayed ** self.n)

    def step(self):
        """Advance one step h; returns the new x."""
        h, m, g = self.h, self.m, self.gamma
        old, nxt = self.pos, (self.pos + 1) % (m + 1)
        x = self.history[(old + m) % (m + 1)]
        d0 = self.history[old]
        d1 = self.history[nxt]
        # left derivative at the interval's right end: equal to the right one except at t = 0
        s1 = 0.0 * d1 if self.count == m - 1 else self.slopes[nxt]
        d_mid = 0.5 * (d0 + d1) + h * (self.slopes[old] - s1) / 8.0
        f0, f_mid, f1 = self.feedback(d0), self.feedback(d_mid), self.feedback(d1)
        k1 = f0 - g * x
        k2 = f_mid - g * (x + 0.5 * h * k1)
        k3 = f_mid - g * (x + 0.5 * h * k2)
        k4 = f1 - g * (x + h * k3)
        new = x + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
        self.slopes[(old + m) % (m + 1)] = k1  # exact right derivative at t
        self.history[old] = new  # the oldest slot (t−τ) becomes the newest (t+h)
        self.pos, self.count = nxt, self.count + 1
        return new

    def get_state(self) -> np.ndarray:
        """History then slopes, oldest first: ``[B, 2(m + 1)]`` (batch states only)."""
        order = [(self.pos + i) % (self.m + 1) for i in range(self.m + 1)]
        return np.stack([self.history[i] for i in order] + [self.slopes[i] for i in order], axis=-1)

    def set_state(self, state: np.ndarray) -> None:
        """Inverse of :meth:`get_state` (after the initial history has been left)."""
        k = self.m + 1
        self.history = [state[:, i].copy() for i in range(k)]
        self.slopes = [state[:, k + i].copy() for i in range(k)]
        self.pos, self.count = 0, max(self.count, k)


def mackey_glass_series(x0: float, params: dict[str, Any], length: int) -> np.ndarray:
    """Samples ``[length]`` every ``dt`` after ``transient`` time units (see module doc)."""
    dt, substeps = float(params["dt"]), int(params["substeps"])
    system = MackeyGlass(float(x0), float(params["tau"]), float(params["beta"]),
                         float(params["gamma"]), float(params["n"]), dt / substeps)
    for _ in range(int(round(float(params["transient"]) / dt)) * substeps):
        system.step()
    out = np.empty(length)
    out[0] = system.history[(system.pos + system.m) % (system.m + 1)]
    for t in range(1, length):
        for _ in range(substeps):
            x = system.step()
        out[t] = x
    return out


def generate_mackey_glass(params: dict[str, Any], seed: int) -> Trajectory:
    """Mackey–Glass series ``[length, 1]`` (column x)."""
    (length,) = positive_ints("mackey-glass", params, "length", minimum=2)
    positive_ints("mackey-glass", params, "substeps")
    dt, tau = float(params["dt"]), float(params["tau"])
    m = tau * int(params["substeps"]) / dt if dt > 0 else 0.5
    need("mackey-glass", dt > 0 and abs(m - round(m)) < 1e-9 and round(m) >= 1,
         f"tau*substeps/dt = {m} must be a positive integer (grid-aligned delay)")
    need("mackey-glass", float(params["transient"]) >= 0, "transient must be >= 0")
    x0 = np.random.default_rng(seed).uniform(0.5, 1.5)
    values = mackey_glass_series(x0, params, length)[:, None]
    meta = system_metadata(params, MG_REFERENCE, dt)
    return Trajectory(values=values, columns=["x"], metadata=meta)


def delay_map_weights(params: dict[str, Any]) -> tuple[list[int], np.ndarray]:
    """The three delays and their normalised weights (checked)."""
    lags = positive_ints("delay-map", params, "d1", "d2", "d3")
    w = np.array([float(params[k]) for k in ("w1", "w2", "w3")])
    need("delay-map", bool(np.all(w >= 0)) and w.sum() > 0, f"weights {w.tolist()} must be >= 0, not all 0")
    return lags, w / w.sum()


def generate_delay_map(params: dict[str, Any], seed: int) -> Trajectory:
    """Multiple-delay logistic map ``[length, 1]`` (column x)."""
    (length,) = positive_ints("delay-map", params, "length", minimum=2)
    (transient,) = positive_ints("delay-map", params, "transient", minimum=0)
    lags, w = delay_map_weights(params)
    r = float(params["r"])
    need("delay-map", 0 < r <= 4, f"r={r} must be in (0, 4]")
    history = np.random.default_rng(seed).uniform(0.05, 0.95, size=max(lags))
    steps = np.tile(np.array(lags), (transient + length, 1))
    x = lagged_logistic("delay-map", history, steps, w, r, seed)
    values = x[-length:, None].copy()
    meta = {**system_metadata(params, DELAY_MAP_REFERENCE, 1.0), "lags": lags, "weights": w.tolist()}
    return Trajectory(values=values, columns=["x"], metadata=meta)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name="mackey-glass", kind="forecast",
        description="Mackey-Glass delay equation, tau=17 (chaotic), RK4 + Hermite history, dt=1",
        citation="Mackey & Glass 1977, Science 197:287; tau=17 setting of Jaeger & Haas 2004",
        generate=generate_mackey_glass,
        defaults={"length": 5000, "dt": 1.0, "substeps": 10, "tau": 17.0, "beta": 0.2,
                  "gamma": 0.1, "n": 10.0, "transient": 500.0},
        param_docs={**COMMON_DOCS, "substeps": "RK4 steps per sample (h = dt/substeps; tau/h integer)",
                    "tau": "delay τ", "beta": "feedback gain β", "gamma": "decay rate γ",
                    "n": "Hill exponent n"},
        metadata={"dt": 1.0, "lyapunov_exponent": MG_LYAPUNOV, "parameters": MG_REFERENCE,
                  "lyapunov_note": "own Benettin estimate (docs/datasets.md); 0.0055 is often quoted",
                  "equations": "dx/dt = beta x(t-tau)/(1+x(t-tau)^n) - gamma x (Mackey & Glass 1977)",
                  "free_run_steps": 84},
    ))
    register(DatasetSpec(
        name="delay-map", kind="forecast",
        description="logistic map driven by a convex mix of three delayed states (seed section 4)",
        citation="seed section 4 (difference equations with multiple time delays); logistic map of May 1976",
        generate=generate_delay_map,
        defaults={"length": 4000, "d1": 1, "d2": 3, "d3": 7, "w1": 0.8, "w2": 0.15, "w3": 0.05,
                  "r": 4.0, "transient": 200},
        param_docs={"length": COMMON_DOCS["length"], "transient": "iterations discarded",
                    "d1": "first delay", "d2": "second delay", "d3": "third delay",
                    "w1": "weight of x(t-d1)", "w2": "weight of x(t-d2)", "w3": "weight of x(t-d3)",
                    "r": "logistic gain r in (0, 4]"},
        metadata={"dt": 1.0, "lyapunov_exponent": DELAY_MAP_LYAPUNOV,
                  "lyapunov_note": "own Benettin estimate (tests/test_lyapunov.py), defaults only",
                  "parameters": DELAY_MAP_REFERENCE,
                  "equations": "x_t = r s(1-s), s = w1 x_{t-d1} + w2 x_{t-d2} + w3 x_{t-d3}"},
    ))

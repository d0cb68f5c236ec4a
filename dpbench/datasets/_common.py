"""Helpers shared by the built-in dataset plugins: parameter docs, seeding, RK4 and
the two-split recall plumbing. Not a plugin (the name starts with ``_``)."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import numpy as np

from dpbench.params import UsageError

State = TypeVar("State")

#: One-line docs of parameters that many forecast generators share.
COMMON_DOCS = {
    "length": "number of samples (split 70/15/15 into train/val/test)",
    "dt": "sampling step in time units",
    "transient": "time units (maps: iterations) generated and discarded before sampling",
}
SPLIT_SIZES = ("n_train", "n_val", "n_test")
SPLIT_DOCS = {"n_train": "training sequences", "n_val": "validation sequences",
              "n_test": "test sequences"}


def split_rngs(seed: int) -> list[np.random.Generator]:
    """Independent generators for train, val and test from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def derived_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator for ``seed`` and an attempt/purpose key path (reproducible)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def rk4_step(rhs: Callable[[State], State], x: State, h: float) -> State:
    """One classical Runge–Kutta step of an autonomous ``dx/dt = rhs(x)``.

    ``x`` may be a float, an array ``[D]`` or a batch ``[B, D]`` (rhs decides)."""
    k1 = rhs(x)
    k2 = rhs(x + 0.5 * h * k1)
    k3 = rhs(x + 0.5 * h * k2)
    k4 = rhs(x + h * k3)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def need(name: str, condition: bool, message: str) -> None:
    """Raise a one-line :class:`UsageError` for dataset ``name`` unless ``condition``."""
    if not condition:
        raise UsageError(f"dataset {name!r}: {message}")


def positive_ints(name: str, params: dict[str, Any], *keys: str, minimum: int = 1) -> list[int]:
    """``int(params[k])`` for ``keys``, each checked to be ``>= minimum``."""
    values = [int(params[k]) for k in keys]
    for key, value in zip(keys, values):
        need(name, value >= minimum, f"{key}={value} must be >= {minimum}")
    return values


def system_metadata(params: dict[str, Any], reference: dict[str, float], dt: float) -> dict[str, Any]:
    """Per-run metadata: the actual ``dt`` and system parameters; ``lyapunov_exponent`` is
    set to ``None`` (unknown) when a parameter differs from the ``reference`` values the
    spec's published exponent holds for."""
    actual = {k: float(params[k]) for k in reference}
    meta: dict[str, Any] = {"dt": float(dt), "parameters": actual}
    if any(not np.isclose(actual[k], v, rtol=1e-12, atol=0.0) for k, v in reference.items()):
        meta["lyapunov_exponent"] = None
    return meta


def lagged_logistic(name: str, history: np.ndarray, lags: np.ndarray, weights: np.ndarray,
                    r: float, seed: int) -> np.ndarray:
    """Logistic map fed by a convex mix of delayed states (May 1976, generalised):
    x_t = r s_t (1 − s_t), s_t = Σ_k weights[k] · x_{t − lags[t, k]}.

    Args:
        history: the first ``d = len(history)`` states (``d`` ≥ every lag).
        lags: ``[n, K]`` lags per new step; ``weights``: ``[K]``, ≥ 0, summing to 1.

    Returns:
        ``[d + n]``: the history followed by the ``n`` new states. Raises ``ValueError``
        when the second half of the orbit has settled on a fixed point.
    """
    d, n = len(history), len(lags)
    x = np.empty(d + n)
    x[:d] = history
    for i in range(n):
        t = d + i
        s = float(np.dot(weights, x[t - lags[i]]))
        x[t] = r * s * (1.0 - s)
    if np.ptp(x[d + n // 2:]) < 1e-6:
        raise ValueError(f"{name}: orbit from seed {seed} settled on a fixed point")
    return x

"""Time-changing interdependence between time steps (seed §4 and Fig. 7).

switching-delay: x_t = r s_t (1 − s_t),  s_t = (1 − w) x_{t−1} + w x_{t−d(k_t)},
where the regime k_t ∈ {0, 1, 2} selects one of three lags (d1, d2, d3) and follows a
Markov chain: it stays with probability ``stay`` and otherwise jumps to one of the two
other regimes uniformly (mean dwell time 1 / (1 − stay) steps). Which past step drives
x_t therefore changes over time — the situation where the seed (§4, eq. 8) argues for an
attention module. The map is a logistic map (May 1976) fed by a convex mix of the last
state and one delayed state, so x_t ∈ [0, r/4] always.

``metadata["regimes"]``: int64 ``[length]``, aligned with ``values``: ``regimes[t]`` is
the regime whose lag produced ``values[t]`` (``metadata["lags"][regimes[t]]`` is that lag).
Test windows start at ``metadata["split_bounds"][2][0]`` of the raw series (set by the core),
so a window's regimes are ``regimes[bounds[2][0] + i : ... + window + horizon]``.
The regime is hidden: it is not a column of the series.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dpbench.data import Trajectory
from dpbench.datasets._common import (COMMON_DOCS, derived_rng, lagged_logistic, need,
                                      positive_ints)
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec


def markov_regimes(n: int, n_regimes: int, stay: float, rng: np.random.Generator) -> np.ndarray:
    """A Markov chain ``[n]`` over ``0..n_regimes-1``: stay w.p. ``stay``, else jump
    uniformly to another regime; starts uniformly."""
    regimes = np.empty(n, dtype=np.int64)
    jumps = rng.random(n) >= stay
    offsets = rng.integers(1, n_regimes, size=n)
    k = int(rng.integers(n_regimes))
    for t in range(n):
        if jumps[t] and t > 0:
            k = (k + int(offsets[t])) % n_regimes
        regimes[t] = k
    return regimes


def generate_switching_delay(params: dict[str, Any], seed: int) -> Trajectory:
    """Series ``[length, 1]`` (column x) and ``metadata["regimes"]`` ``[length]``."""
    name = "switching-delay"
    (length,) = positive_ints(name, params, "length", minimum=2)
    (transient,) = positive_ints(name, params, "transient", minimum=0)
    lags = positive_ints(name, params, "d1", "d2", "d3")
    w, r, stay = float(params["w"]), float(params["r"]), float(params["stay"])
    need(name, 0 < w <= 1, f"w={w} must be in (0, 1]")
    need(name, 0 < r <= 4, f"r={r} must be in (0, 4]")
    need(name, 0 <= stay < 1, f"stay={stay} must be in [0, 1)")
    d = max(lags)
    regimes = markov_regimes(d + transient + length, 3, stay, derived_rng(seed, 1))
    history = derived_rng(seed, 0).uniform(0.05, 0.95, size=d)
    steps = np.stack([np.ones(len(regimes) - d, dtype=np.int64),
                      np.array(lags)[regimes[d:]]], axis=1)
    x = lagged_logistic(name, history, steps, np.array([1.0 - w, w]), r, seed)
    values = x[-length:, None].copy()
    meta = {"dt": 1.0, "regimes": regimes[-length:].copy(), "lags": lags,
            "mean_dwell": 1.0 / (1.0 - stay)}
    return Trajectory(values=values, columns=["x"], metadata=meta)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name="switching-delay", kind="forecast",
        description="logistic map whose driving lag switches between 3 regimes (Markov chain)",
        citation="seed section 4 and Fig. 7 (time-changing interdependence); logistic map of May 1976",
        generate=generate_switching_delay,
        defaults={"length": 4000, "d1": 2, "d2": 5, "d3": 11, "w": 0.7, "r": 4.0,
                  "stay": 0.98, "transient": 200},
        param_docs={"length": COMMON_DOCS["length"], "transient": "iterations discarded",
                    "d1": "lag of regime 0", "d2": "lag of regime 1", "d3": "lag of regime 2",
                    "w": "weight of the delayed state x(t-d)", "r": "logistic gain r in (0, 4]",
                    "stay": "probability of keeping the regime at each step"},
        metadata={"dt": 1.0, "regimes": "metadata['regimes'][t] = regime of values[t]",
                  "equations": "x_t = r s(1-s), s = (1-w) x_{t-1} + w x_{t-d(k_t)}, k_t Markov"},
    ))

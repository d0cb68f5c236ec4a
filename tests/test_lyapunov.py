"""Largest Lyapunov exponents re-derived from the datasets' own equations and integrators
(Benettin's method, :mod:`dpbench.datasets._lyapunov`) against the metadata values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dpbench.datasets import delays, flows, maps, spatiotemporal
from dpbench.datasets._common import rk4_step
from dpbench.datasets._lyapunov import largest_lyapunov
from dpbench.plugins import load_registry

REGISTRY = load_registry(disable_third_party=True)


def metadata_lambda(name: str) -> float:
    return REGISTRY.dataset(name).metadata["lyapunov_exponent"]


def starts(low, high, shape, seed=0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def test_estimator_on_a_linear_map_is_exact():
    """At the fixed point 0 of x' = A x the exponent is ln of A's largest |eigenvalue|."""
    a = np.array([[1.5, 1.0], [0.0, 0.5]])
    lam = largest_lyapunov(lambda x: x @ a.T, np.zeros((4, 2)), 200, transient=20)
    np.testing.assert_allclose(lam, math.log(1.5), rtol=1e-6)


def test_logistic_is_ln2():
    lam = largest_lyapunov(maps.logistic_step(4.0), starts(0.1, 0.9, (64, 1)), 3000, transient=100).mean()
    assert metadata_lambda("logistic") == pytest.approx(math.log(2.0))
    assert lam == pytest.approx(math.log(2.0), rel=0.02)


def test_henon():
    lam = largest_lyapunov(maps.henon_step(1.4, 0.3), starts(-0.1, 0.1, (64, 2)), 3000, transient=200).mean()
    assert lam == pytest.approx(0.419, rel=0.02)
    assert metadata_lambda("henon") == pytest.approx(lam, rel=0.02)


def _flow_lambda(rhs, x0, dt, n_steps, transient):
    field = lambda s: rhs(0.0, s.T).T
    return largest_lyapunov(lambda s: rk4_step(field, s, dt), x0, n_steps, dt=dt, transient=transient).mean()


def test_lorenz():
    x0 = np.array([1.0, 1.0, 25.0]) + starts(-5, 5, (32, 3))
    lam = _flow_lambda(flows.lorenz_rhs(10.0, 28.0, 8.0 / 3.0), x0, 0.01, 10000, 1000)
    assert lam == pytest.approx(0.906, rel=0.03)
    assert metadata_lambda("lorenz") == pytest.approx(lam, rel=0.03)


def test_rossler():
    x0 = np.array([1.0, -1.0, 0.0]) + starts(-1, 1, (32, 3)) * np.array([1, 1, 0])
    lam = _flow_lambda(flows.rossler_rhs(0.2, 0.2, 5.7), x0, 0.1, 10000, 1000)
    assert lam == pytest.approx(0.0714, rel=0.06)


def test_delay_map_is_chaotic_at_its_defaults():
    spec = REGISTRY.dataset("delay-map").defaults
    lags, w = (spec["d1"], spec["d2"], spec["d3"]), (spec["w1"], spec["w2"], spec["w3"])
    depth = max(lags)

    def step(state):  # state[:, -1] = x_t, state[:, -k] = x_{t-k+1}
        s = sum(wi * state[:, depth - lag] for wi, lag in zip(w, lags))
        return np.concatenate([state[:, 1:], (4.0 * s * (1.0 - s))[:, None]], axis=1)

    lam = largest_lyapunov(step, starts(0.05, 0.95, (16, depth)), 3000, transient=500, eps=1e-9)
    assert lam.min() > 0.1  # every orbit chaotic, none on a periodic window
    assert metadata_lambda("delay-map") == pytest.approx(lam.mean(), rel=0.1)


def test_kuramoto_sivashinsky():
    ks = spatiotemporal.KuramotoSivashinsky(22.0, 64, 0.25)
    params = {**REGISTRY.dataset("kuramoto-sivashinsky").defaults, "length": 2, "transient": 100.0}
    x0 = np.stack([spatiotemporal.generate_ks(params, s).values[-1] for s in range(8)])
    step = lambda u: ks.to_grid(ks.step(ks.to_fourier(u)))
    lam = largest_lyapunov(step, x0, 4000, dt=0.25, transient=200).mean()
    assert lam == pytest.approx(metadata_lambda("kuramoto-sivashinsky"), rel=0.15)


def test_mackey_glass_positive_and_near_metadata():
    system = delays.MackeyGlass(starts(0.5, 1.5, 8), 17.0, 0.2, 0.1, 10.0, 0.1)
    for _ in range(3000):
        system.step()

    def step(state):  # one time unit = 10 RK4 steps of the history map
        system.set_state(state)
        for _ in range(10):
            system.step()
        return system.get_state()

    lam = largest_lyapunov(step, system.get_state(), 1500, transient=100, eps=1e-8).mean()
    assert lam == pytest.approx(metadata_lambda("mackey-glass"), rel=0.3)

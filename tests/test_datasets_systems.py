"""Each dataset is the system it claims to be: independent reference integrations,
recurrences re-checked on the generated values, NARMA divergence handling, recall targets."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from dpbench.data import generate_raw, prepare, split_bounds
from dpbench.datasets import narma
from dpbench.datasets._common import derived_rng, rk4_step
from dpbench.params import UsageError
from dpbench.plugins import load_registry

REGISTRY = load_registry(disable_third_party=True)


def raw(name: str, seed: int = 0, **params):
    spec = REGISTRY.dataset(name)
    return generate_raw(spec, {**spec.defaults, **params}, seed, use_cache=False)


def test_lorenz_matches_fine_rk4_reference():
    traj = raw("lorenz", length=41, transient=0.0)  # 1 time unit
    f = lambda s: np.array([10 * (s[1] - s[0]), s[0] * (28 - s[2]) - s[1], s[0] * s[1] - 8 / 3 * s[2]])
    x, h, ref = traj.values[0].copy(), 1e-4, [traj.values[0]]
    for _ in range(40):
        for _ in range(250):
            x = rk4_step(f, x, h)
        ref.append(x)
    np.testing.assert_allclose(traj.values, np.array(ref), atol=1e-7)


def test_lorenz_drift_ramps_rho_over_the_test_segment_only():
    base = raw("lorenz", length=400)
    drift = raw("lorenz", length=400, drift=5.0)
    start = split_bounds(400)[2][0]
    rho = drift.metadata["rho"]
    assert np.all(rho[:start + 1] == 28.0) and rho[-1] == pytest.approx(33.0)
    assert np.allclose(np.diff(rho[start:]), 5.0 / (399 - start))
    assert np.all(base.metadata["rho"] == 28.0)
    np.testing.assert_allclose(drift.values[:start], base.values[:start], atol=1e-6)
    assert np.abs(drift.values[-20:] - base.values[-20:]).max() > 1e-3


def _mackey_glass_method_of_steps(x0: float, horizon: float, tau=17.0, beta=0.2, gamma=0.1, n=10.0):
    """Independent reference: DOP853 one delay interval at a time, the delayed term read
    from the previous interval's dense output (constant history x0)."""
    pieces, previous, start, x = [], (lambda t: x0), 0.0, x0
    while start < horizon:
        rhs = lambda t, y, p=previous: [beta * p(t - tau) / (1 + p(t - tau) ** n) - gamma * y[0]]
        sol = solve_ivp(rhs, (start, start + tau), [x], method="DOP853", dense_output=True,
                        rtol=1e-12, atol=1e-12)
        dense = sol.sol
        previous = lambda t, d=dense: float(d(t)[0])
        pieces.append((start, dense))
        start, x = start + tau, sol.y[0, -1]
    return lambda t: next(float(d(t)[0]) for a, d in pieces if a <= t <= a + tau)


def test_mackey_glass_matches_method_of_steps():
    traj = raw("mackey-glass", length=86, transient=0.0)  # 5 delay intervals
    ref = _mackey_glass_method_of_steps(float(traj.values[0, 0]), 85.0)
    np.testing.assert_allclose(traj.values[:, 0], [ref(t) for t in range(86)], atol=1e-8)
    coarse = raw("mackey-glass", length=86, transient=0.0, substeps=5)
    assert np.abs(coarse.values - traj.values).max() > 1e-10  # the step size matters, so it was tested


def test_kuramoto_sivashinsky_matches_stiff_reference():
    traj = raw("kuramoto-sivashinsky", length=21, transient=50.0)  # 5 time units
    size, n = 22.0, 64
    k = 2 * np.pi / size * np.fft.rfftfreq(n, 1.0 / n)

    def rhs(t, u):
        v = np.fft.rfft(u)
        nonlinear = -0.5j * k * np.fft.rfft(u * u)
        nonlinear[-1] = 0.0
        return np.fft.irfft((k ** 2 - k ** 4) * v + nonlinear, n=n)

    sol = solve_ivp(rhs, (0, 5.0), traj.values[0], method="Radau", t_eval=np.arange(21) * 0.25,
                    rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(traj.values, sol.y.T, atol=2e-4)
    assert np.abs(traj.values.mean(axis=1)).max() < 1e-12  # the mean mode is conserved (zero)


def test_maps_and_delay_maps_follow_their_recurrences():
    x = raw("logistic", length=200).values[:, 0]
    np.testing.assert_allclose(x[1:], 4 * x[:-1] * (1 - x[:-1]), atol=1e-15)
    h = raw("henon", length=200).values
    np.testing.assert_allclose(h[1:, 0], 1 - 1.4 * h[:-1, 0] ** 2 + h[:-1, 1], atol=1e-14)
    np.testing.assert_allclose(h[1:, 1], 0.3 * h[:-1, 0], atol=1e-15)
    d = raw("delay-map", length=200).values[:, 0]
    t = np.arange(7, 200)
    s = 0.8 * d[t - 1] + 0.15 * d[t - 3] + 0.05 * d[t - 7]
    np.testing.assert_allclose(d[t], 4 * s * (1 - s), atol=1e-15)


def test_switching_delay_regimes_are_aligned_with_values():
    traj = raw("switching-delay", length=3000)
    x, regimes, lags = traj.values[:, 0], traj.metadata["regimes"], traj.metadata["lags"]
    assert regimes.dtype == np.int64 and regimes.shape == (3000,)
    t = np.arange(max(lags), 3000)
    s = 0.3 * x[t - 1] + 0.7 * x[t - np.array(lags)[regimes[t]]]
    np.testing.assert_allclose(x[t], 4 * s * (1 - s), atol=1e-15)
    wrong = 0.3 * x[t - 1] + 0.7 * x[t - np.array(lags)[(regimes[t] + 1) % 3]]
    assert np.mean(np.abs(x[t] - 4 * wrong * (1 - wrong)) > 1e-6) > 0.9
    switches = np.count_nonzero(np.diff(regimes))
    assert 30 < switches < 90  # mean dwell 1/(1-0.98) = 50 steps -> ~60 switches
    task = prepare(REGISTRY.dataset("switching-delay"), {"length": 3000}, seed=0, use_cache=False)
    assert task.metadata["regimes"].shape == (3000,)
    assert task.metadata["split_bounds"][2][0] == split_bounds(3000)[2][0]


@pytest.mark.parametrize("name", ["narma10", "narma30"])
def test_narma_bounded_and_follows_its_recursion(name):
    order = int(name[5:])
    spec = REGISTRY.dataset(name)
    a, b, c, d = (spec.defaults[k] for k in ("alpha", "beta", "gamma", "delta"))
    for seed in range(5):
        traj = raw(name, seed)
        u, y = traj.values[:, 0], traj.values[:, 1]
        assert traj.exogenous == ["u"] and np.all((u >= 0) & (u <= 0.5))
        assert np.all(np.isfinite(y)) and np.abs(y).max() < 2.0
        t = np.arange(order - 1, len(y) - 1)
        sums = np.array([y[i - order + 1:i + 1].sum() for i in t])
        np.testing.assert_allclose(y[t + 1], a * y[t] + b * y[t] * sums + c * u[t - order + 1] * u[t] + d,
                                   rtol=1e-12, atol=1e-12)


def test_narma_divergent_draws_are_redrawn_deterministically():
    spec = REGISTRY.dataset("narma10")
    params = {**spec.defaults, "beta": 0.055}
    first = narma.generate_narma10(params, 0)
    again = narma.generate_narma10(params, 0)
    attempts = first.metadata["redraws"]
    assert attempts > 0
    np.testing.assert_array_equal(first.values, again.values)
    total = 10 + params["transient"] + params["length"]
    for attempt in range(attempts + 1):
        u = derived_rng(0, attempt).uniform(0, 0.5, size=total)
        y = narma.narma_response(u, 10, 0.3, 0.055, 1.5, 0.1, bound=10.0)
        assert (y is None) == (attempt < attempts)
    np.testing.assert_array_equal(first.values[:, 0], u[10 + params["transient"]:])
    with pytest.raises(UsageError, match="diverged"):
        narma.generate_narma10({**params, "beta": 0.2, "max_redraws": 2}, 0)


def test_copy_adding_and_delayed_recall_targets():
    copy = raw("copy", lag=12, n_train=50, n_val=5, n_test=5)
    x, y = copy.train.x.argmax(-1), copy.train.y
    assert (y[:, -10:] == x[:, :10]).all() and (y[:, :-10] == 0).all()
    assert copy.baseline == pytest.approx(10 * math.log(8) / 32)
    adding = raw("adding", lag=30, n_train=20000, n_val=5, n_test=5)
    vals, marks = adding.train.x[..., 0], adding.train.x[..., 1]
    assert (marks.sum(1) == 2).all() and (marks[:, :15].sum(1) == 1).all()
    np.testing.assert_allclose(adding.train.y[:, 0, 0], (vals * marks).sum(1), rtol=1e-6)
    assert float(((adding.train.y - 1) ** 2).mean()) == pytest.approx(1 / 6, abs=0.006)
    delayed = raw("delayed-recall", lag=15, out_steps=5, n_train=3000, n_val=5, n_test=5)
    xs = delayed.train.x[..., 0].double().numpy()
    assert xs.shape == (3000, 20)
    np.testing.assert_allclose(xs[:, 1:], 4 * xs[:, :-1] * (1 - xs[:, :-1]), atol=1e-6)
    np.testing.assert_array_equal(delayed.train.y[:, :, 0].numpy(), xs[:, :5].astype(np.float32))
    assert float(delayed.train.y.var()) == pytest.approx(delayed.baseline, abs=0.01)


def test_associative_recall_answer_follows_the_query():
    data = raw("associative-recall", n_train=200, n_val=5, n_test=30, test_items=12)
    bits = 6
    weights = 2 ** np.arange(bits)
    for split, counts in ((data.train, range(2, 7)), (data.test, [12])):
        x, y = split.x.numpy(), split.y.numpy()
        assert x.shape[1] == 4 * 12 + 8 and y.shape[1] == 3
        for i in range(len(x)):
            starts = np.flatnonzero(x[i, :, bits])  # item delimiters
            assert len(starts) in counts
            items = [tuple((x[i, s + 1:s + 4, :bits] @ weights).astype(int)) for s in starts]
            q = np.flatnonzero(x[i, :, bits + 1])
            assert len(q) == 2 and q[1] - q[0] == 4
            query = tuple((x[i, q[0] + 1:q[0] + 4, :bits] @ weights).astype(int))
            assert len(set(items)) == len(items) and query in items[:-1]
            assert tuple(y[i]) == items[items.index(query) + 1]
            assert not x[i, -3:].any()  # blank answer steps
    assert data.baseline == pytest.approx(6 * math.log(2))

"""Long-term statistics against the true system: an independent trajectory of the true
equations (the "true system as a model") scores near zero on every distance and gets λ
within 5 %; persistence and a damped model score clearly worse; a model that runs away to
infinity gets the worst score, never NaN. Plus the pieces on synthetic signals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpbench.data import prepare
from dpbench.datasets._common import rk4_step
from dpbench.datasets.flows import lorenz_rhs
from dpbench.harness import evaluate as E
from dpbench.harness.suite import EvalConfig
from dpbench.metrics import _longterm as L
from dpbench.testing import TrueSystemModel

DT, SUBSTEPS = 0.025, 5
CFG = EvalConfig(rollout_starts=4, test_trajectories=4, vpt_cap_lyapunov=1, long_lyapunov_times=50,
                 long_starts=4)


def lorenz_step(states: np.ndarray) -> np.ndarray:
    """One sampling interval of Lorenz-63, ``[B, 3] -> [B, 3]``, by RK4 substeps."""
    rhs = lorenz_rhs(10.0, 28.0, 8.0 / 3.0)
    x = states.T
    for _ in range(SUBSTEPS):
        x = rk4_step(lambda z: rhs(0.0, z), x, DT / SUBSTEPS)
    return x.T


class Persistence(torch.nn.Module):
    """ŷ(t+1) = x(t): the last value forever."""

    def forward(self, x):
        return x[:, -1:].clone()


class Damped(torch.nn.Module):
    """The true step shrunk towards the train mean by 2 % per step: spirals into a fixed point."""

    def __init__(self, truth):
        super().__init__()
        self.truth = truth

    def forward(self, x):
        return 0.98 * self.truth(x)


class Runaway(torch.nn.Module):
    """Grows by 50 % per step: overflows to inf, then NaN."""

    def forward(self, x):
        return x[:, -1:] * 1.5 + 0.1


def scores(model, task) -> dict[str, float]:
    ctx = E.EvalContext(model, task, CFG, "cpu")
    out = {"psd_distance": L.psd_distance(ctx), "w1_marginal": L.w1_marginal(ctx),
           "w1_sliced": L.w1_sliced(ctx), "climate_ok": L.climate(ctx), **L.lyapunov(ctx)}
    return out


@pytest.fixture(scope="module")
def scored(registry):
    task = prepare(registry.dataset("lorenz"), {"length": 400, "window": 8}, 0)
    truth = TrueSystemModel(lorenz_step, task.metadata["train_mean"], task.metadata["train_std"])
    return {name: scores(model, task) for name, model in
            (("truth", truth), ("persistence", Persistence()), ("damped", Damped(truth)), ("runaway", Runaway()))}


@pytest.mark.slow
def test_the_true_system_scores_near_zero_and_gets_lambda(scored):
    s = scored["truth"]
    assert s["psd_distance"] < 0.15        # decades; sampling noise of two Welch estimates
    assert s["w1_marginal"] < 0.2 and s["w1_sliced"] < 0.2   # std units
    assert s["lyapunov_rel_error"] < 0.05 and s["lyapunov_model"] == pytest.approx(0.906, rel=0.05)
    assert s["climate_ok"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["persistence", "damped"])
def test_persistence_and_a_damped_model_score_clearly_worse(scored, name):
    s, truth = scored[name], scored["truth"]
    for key in ("psd_distance", "w1_marginal", "w1_sliced"):
        assert s[key] > 3 * truth[key], key
    assert s["lyapunov_rel_error"] > 0.5 and s["climate_ok"] == 0.0


@pytest.mark.slow
def test_a_model_that_diverges_gets_the_worst_score_not_nan(scored):
    s = scored["runaway"]
    assert all(math.isfinite(v) for v in s.values())
    others = [v for k, v in scored.items() if k != "runaway"]
    for key in ("psd_distance", "w1_marginal", "w1_sliced", "lyapunov_rel_error"):
        assert s[key] >= max(o[key] for o in others), key
    assert s["psd_distance"] == L.PSD_WORST and s["lyapunov_rel_error"] == L.LAMBDA_ERROR_WORST
    assert s["climate_ok"] == 0.0 and "lyapunov_model" not in s


def test_sanitize_replaces_non_finite_values_and_flags_divergence():
    x, diverged = L.sanitize(np.array([[0.5, np.nan], [np.inf, -np.inf]]))
    assert diverged and x.tolist() == [[0.5, L.CLIP], [L.CLIP, -L.CLIP]]
    assert L.sanitize(np.zeros((3, 2)))[1] is False


def test_psd_distance_sees_a_shifted_spectrum_and_ignores_the_phase():
    t = np.arange(4096) * 0.05
    rng = np.random.default_rng(0)
    ref = np.sin(2 * np.pi * 1.0 * t)[:, None] + 0.1 * rng.standard_normal((4096, 1))
    same = np.sin(2 * np.pi * 1.0 * t + 1.3)[:, None] + 0.1 * rng.standard_normal((4096, 1))
    other = np.sin(2 * np.pi * 3.0 * t)[:, None] + 0.1 * rng.standard_normal((4096, 1))
    d_same, d_other = L.log_psd_distance(same, ref, 0.05), L.log_psd_distance(other, ref, 0.05)
    assert d_same < 0.15 and d_other > 2.5 * d_same


def test_wasserstein_distances_match_a_known_shift():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((20000, 2))
    shifted = ref + np.array([0.5, 0.0])
    assert L.marginal_w1(shifted, ref) == pytest.approx(0.25, abs=0.02)   # mean of 0.5 and 0
    # a shift s along x projects to |s·u_x| on each direction u: mean over directions
    dirs = np.random.default_rng(0).standard_normal((L.PROJECTIONS, 2))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    assert L.sliced_w1(shifted, ref) == pytest.approx(float(np.mean(np.abs(0.5 * dirs[:, 0]))), abs=0.02)


def test_climate_flag_catches_a_limit_cycle_and_a_fixed_point():
    t = np.arange(3000) * 0.05
    rng = np.random.default_rng(2)
    ref = np.cumsum(rng.standard_normal((3000, 2)), axis=0) * 0.05          # aperiodic wandering
    ref -= ref.mean(axis=0)
    cycle = np.stack([np.sin(2 * np.pi * t / 3.7), np.cos(2 * np.pi * t / 3.7)], axis=1) * np.abs(ref).max() * 0.5
    fixed = np.zeros_like(ref) + 0.3
    assert L.climate_ok(ref[None], ref, False, 200)
    assert not L.climate_ok(cycle[None], ref, False, 200)                     # period 74 steps
    assert not L.climate_ok(fixed[None], ref, False, 200)
    assert not L.climate_ok(ref[None] * 10, ref, False, 200)                   # unbounded
    assert not L.climate_ok(ref[None], ref, True, 200)                         # diverged


def test_long_rollouts_are_batched_with_their_twins_and_counted_in_time(registry):
    task = prepare(registry.dataset("lorenz"), {"length": 400, "window": 8}, 0)
    calls = []

    class Spy(Persistence):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    cfg = EvalConfig(rollout_starts=4, rollout_steps=60, vpt_cap_lyapunov=1, long_lyapunov_times=4,
                     long_starts=3, long_steps=10)
    ctx = E.EvalContext(Spy(), task, cfg, "cpu")
    lr, short = ctx.long_rollouts, ctx.rollouts
    steps, vpt = E.long_steps(task, cfg), E.vpt_steps(task, cfg)
    assert steps == math.ceil(4 / (0.906 * 0.025)) > vpt == 60
    assert lr.pred.shape == (3, steps, 3) and lr.reference.shape == (steps, 3)
    assert short.pred.shape == (4, vpt, 3) and torch.equal(torch.as_tensor(lr.pred[:, :vpt]).float(), short.pred[:3])
    assert calls == [7] * steps      # one pass: 4 starts + 3 twins (long_starts) per call; VPT rollouts are its start
    assert lr.time == pytest.approx((steps - int(E.TWIN_TRANSIENT * steps)) * task.dt)
    # persistence neither grows nor shrinks a perturbation: λ̂ = 0 up to float32 rounding
    assert np.abs(lr.log_growth / lr.time).max() < 0.01

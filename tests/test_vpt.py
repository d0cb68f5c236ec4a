"""Hardened valid prediction time: NaN counts as crossing, censoring at the cap, the
median with a bootstrap interval, several thresholds, and rollouts from non-overlapping
starts in independent test trajectories."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dpbench.data import fresh_seed, generate_raw, prepare
from dpbench.harness import evaluate as E
from dpbench.harness.suite import EvalConfig, parse_suite
from dpbench.metrics import crossings
from dpbench.metrics._vpt import median_ci, thresholds, vpt
from dpbench.params import UsageError

LORENZ = {"length": 400, "window": 8}


def test_nan_and_inf_count_as_crossing_at_that_step():
    err = torch.tensor([[0.1, float("nan"), 0.1, 0.1],
                        [0.1, 0.2, float("inf"), 0.1],
                        [0.1, 0.1, 0.1, 0.1],
                        [0.6, 0.1, 0.1, 0.1]])
    steps, censored = crossings(err, 0.5)
    assert steps.tolist() == [1, 2, 4, 0]
    assert censored.tolist() == [False, False, True, False]


def fake_ctx(pred, truth, **cfg):
    task = SimpleNamespace(lyapunov_exponent=0.5, dt=0.1)
    config = EvalConfig(**cfg)
    return SimpleNamespace(task=task, config=config, samples={},
                           rollouts=SimpleNamespace(pred=pred, truth=truth))


def test_a_rollout_that_turns_nan_is_not_credited_the_cap():
    truth = torch.zeros(3, 50, 2)
    pred = truth.clone()
    pred[0, 10:] = float("nan")          # diverged at step 10
    pred[1, 20:] = 1.0                   # error 1 > ε from step 20
    ctx = fake_ctx(pred, truth)
    out = vpt(ctx)
    assert ctx.samples["vpt_lyapunov"] == pytest.approx([10 * 0.05, 20 * 0.05, 50 * 0.05])
    assert ctx.samples["vpt_censored"] == [0.0, 0.0, 1.0]
    assert out["vpt_lyapunov"] == pytest.approx(1.0)           # the median, not the mean
    assert out["vpt_censored"] == pytest.approx(1 / 3)
    assert out["vpt_cap"] == pytest.approx(50 * 0.05) and out["vpt_starts"] == 3
    assert out["vpt_ci_low"] <= out["vpt_lyapunov"] <= out["vpt_ci_high"]


def test_every_threshold_gives_a_vpt_and_lower_thresholds_give_shorter_ones():
    t = torch.linspace(0, 1, 60)
    truth = torch.zeros(4, 60, 1)
    pred = (t[None, :, None] * torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None, None])  # errors grow linearly
    out = vpt(fake_ctx(pred, truth, vpt_threshold=0.5, vpt_thresholds="0.3,0.4,0.5"))
    assert set(k for k in out if k.startswith("vpt_lyapunov")) == {
        "vpt_lyapunov", "vpt_lyapunov@eps=0.3", "vpt_lyapunov@eps=0.4"}
    assert out["vpt_lyapunov@eps=0.3"] < out["vpt_lyapunov@eps=0.4"] < out["vpt_lyapunov"]
    assert thresholds(EvalConfig(vpt_threshold=0.4, vpt_thresholds="0.5,0.4,0.5")) == [0.4, 0.5]


def test_bootstrap_interval_of_the_median():
    rng = np.random.default_rng(0)
    wide = median_ci(rng.exponential(size=8))
    narrow = median_ci(rng.exponential(size=400))
    for med, lo, hi in (wide, narrow):
        assert lo <= med <= hi
    assert narrow[2] - narrow[1] < wide[2] - wide[1]
    assert median_ci(np.array([2.0, 2.0, 2.0])) == (2.0, 2.0, 2.0)
    assert median_ci(np.array([3.0])) == (3.0, 3.0, 3.0)


def test_the_default_cap_is_at_least_15_lyapunov_times(registry):
    for name in ("lorenz", "rossler", "henon"):
        task = prepare(registry.dataset(name), {"length": 400, "window": 8}, 0)
        steps = E.vpt_steps(task, EvalConfig())
        assert steps * task.dt * task.lyapunov_exponent >= 15.0


def test_rollouts_start_in_independent_trajectories_without_overlap(registry):
    task = prepare(registry.dataset("lorenz"), LORENZ, 0)
    cfg = EvalConfig(rollout_starts=4, test_trajectories=2, vpt_cap_lyapunov=3)
    segments, steps, independent = E.rollout_segments(task, cfg)
    window = LORENZ["window"]
    seg = window + steps
    assert independent and segments.shape == (4, seg, 3) and steps * 0.025 * 0.906 >= 3
    for i in range(2):                   # two segments laid end to end in each trajectory
        series = task.fresh_series(i, 2 * seg)
        assert torch.equal(segments[2 * i], series[:seg]) and torch.equal(segments[2 * i + 1], series[seg:])
    assert not torch.allclose(segments[0, :window], segments[2, :window])    # other initial conditions
    test_rows = {tuple(r) for r in task.test_series.tolist()}
    assert not any(tuple(r) in test_rows for r in segments.reshape(-1, 3).tolist())


def test_fresh_trajectories_use_the_train_normalisation(registry):
    spec = registry.dataset("lorenz")
    task = prepare(spec, {"length": 600, "window": 8}, 1)
    raw = generate_raw(spec, {**task.params, "length": 300}, fresh_seed(1, 7)).values
    mean, std = np.array(task.metadata["train_mean"]), np.array(task.metadata["train_std"])
    expected = torch.as_tensor((raw - mean) / std, dtype=torch.float32)
    assert torch.equal(task.fresh_series(7, 300), expected)
    assert fresh_seed(1, 7) not in (1, fresh_seed(1, 6), fresh_seed(2, 7))


def test_datasets_without_fresh_trajectories_fall_back_to_the_test_split(registry):
    drift = prepare(registry.dataset("lorenz"), {**LORENZ, "drift": 5.0}, 0)
    assert drift.fresh_series is None     # non-stationary: no independent trajectories
    segments, steps, independent = E.rollout_segments(drift, EvalConfig(rollout_steps=20, rollout_starts=3))
    assert not independent and segments.shape == (3, 8 + 20, 3)
    assert prepare(registry.dataset("mackey-glass"), {"length": 600}, 0).fresh_series is None


@pytest.mark.parametrize("value", ["0.3,abc", "-0.1", "0.3,0"])
def test_bad_vpt_thresholds_are_a_usage_error(value):
    suite = {"name": "x", "eval": {"vpt_thresholds": value}, "block": [{"models": ["lstm"], "datasets": ["lorenz"]}]}
    with pytest.raises(UsageError, match="vpt_thresholds") as exc:
        parse_suite(suite, "t")
    assert "\n" not in str(exc.value)
    ok = {**suite, "eval": {"vpt_thresholds": [0.3, 0.4]}}
    assert parse_suite(ok, "t").blocks[0].eval.vpt_thresholds == "0.3,0.4"

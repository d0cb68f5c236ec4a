"""The template plugin: passes the conformance kit, its data obeys the oscillator's
invariant, dpbench finds it through its entry point, and its model learns the task."""
import numpy as np
import pytest

from dpbench.harness.suite import EvalConfig, TrainConfig, Trial
from dpbench.harness.trial import execute
from dpbench.plugins import load_registry
from dpbench.testing import check_dataset_spec, check_model_spec
from dpbench_example.plugin import DATASET, MODEL, oscillator


@pytest.fixture(scope="module")
def registry():
    return load_registry(strict=True)


def test_model_passes_the_conformance_kit():
    check_model_spec(MODEL)


def test_dataset_passes_the_conformance_kit():
    check_dataset_spec(DATASET)


def test_energy_is_conserved_exactly():
    params = {**DATASET.defaults, "omega": 2.5, "amplitude": 0.7}
    traj = oscillator(params, seed=3)
    x, v = traj.values.T
    np.testing.assert_allclose(v**2 + 2.5**2 * x**2, (0.7 * 2.5) ** 2, rtol=1e-12)
    assert not np.allclose(traj.values, oscillator(params, seed=4).values)  # the seed sets the phase


def test_dpbench_finds_the_plugin_through_its_entry_point(registry):
    assert registry.model("example-mlp").plugin == "dpbench-example"
    assert registry.dataset("example-oscillator").plugin == "dpbench-example"


def test_the_model_learns_the_oscillator(registry):
    trial = Trial("example-mlp", {}, "example-oscillator", {"length": 600, "window": 8}, 0, "cpu",
                  TrainConfig(steps=150, batch_size=16, eval_every=50, param_budget=500),
                  EvalConfig(rollout_steps=50, rollout_starts=2, timing_repeats=1))
    metrics = execute(trial, registry).metrics
    assert metrics["nrmse_1step"] < 0.05, metrics["nrmse_1step"]  # untrained: about 1.1

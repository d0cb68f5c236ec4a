"""The dysts plugin: conformance, agreement with an independent Lorenz-63 integration,
per-system metadata reaching the trial (so VPT is computed), sampling, caching, and
failures that name the system."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from dpbench.data import prepare
from dpbench.datasets.flows import lorenz_rhs
from dpbench.harness.suite import EvalConfig, TrainConfig, Trial
from dpbench.harness.trial import execute
from dpbench.plugins import load_registry
from dpbench.testing import check_dataset_spec
from dpbench_dysts import generate as G
from dpbench_dysts.plugin import DYSTS
from dpbench_dysts.systems import catalogue, supported, system_facts

SMALL = {"length": 400, "window": 8, "horizon": 2}


@pytest.fixture(scope="module")
def registry():
    return load_registry(strict=True)


@pytest.mark.parametrize("system", ["Lorenz", "Rossler", "Chua"])
def test_passes_the_conformance_kit(system):
    check_dataset_spec(DYSTS, params={**SMALL, "system": system})


def test_catalogue_has_the_chaotic_flows():
    assert len(supported()) >= 125
    assert all(not catalogue()[n].get("delay") for n in supported())
    assert "MackeyGlass" in catalogue() and "MackeyGlass" not in supported()


def test_lorenz_matches_an_independent_integration():
    """dysts' Lorenz right-hand side (through this plugin) against dpbench's own
    Lorenz-63 (Lorenz 1963) with dysts' parameters, both from the same initial state."""
    params = catalogue()["Lorenz"]["parameters"]
    x0 = G.initial_state("Lorenz", 5)
    dt = G.sampling_step(system_facts("Lorenz"), "period", 30)
    t = np.arange(120) * dt  # about 6 Lyapunov times
    ours = G.integrate_system("Lorenz", x0, t, transient=0.0)
    ref = solve_ivp(lorenz_rhs(params["sigma"], params["rho"], params["beta"]), (0, t[-1]), x0,
                    method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12).y.T
    np.testing.assert_allclose(ours, ref, atol=1e-4 * np.abs(ref).max())


def test_sampling_sets_dt_per_system():
    facts = system_facts("Rossler")
    by_period = G.generate({**DYSTS.defaults, "system": "Rossler", "length": 50, "points": 40}, 0)
    assert by_period.metadata["dt"] == pytest.approx(facts["period"] / 40)
    by_lyap = G.generate({**DYSTS.defaults, "system": "Rossler", "length": 50, "sampling": "lyapunov",
                          "points": 10}, 0)
    assert by_lyap.metadata["dt"] == pytest.approx(1 / (10 * facts["lyapunov_exponent"]))


def test_trajectory_metadata_reaches_the_trial_and_vpt_is_scored(registry):
    task = prepare(registry.dataset("dysts"), {**SMALL, "system": "Rossler"}, seed=0)
    facts = system_facts("Rossler")
    assert task.lyapunov_exponent == pytest.approx(facts["lyapunov_exponent"])
    assert task.dt == pytest.approx(facts["period"] / DYSTS.defaults["points"])
    assert task.metadata["parameters"] == catalogue()["Rossler"]["parameters"]
    trial = Trial("gru", {}, "dysts", {**SMALL, "system": "Rossler"}, 0, "cpu",
                  TrainConfig(steps=5, batch_size=8, eval_every=5, param_budget=500),
                  EvalConfig(rollout_steps=20, rollout_starts=2, timing_repeats=1, vpt_cap_lyapunov=1,
                             long_lyapunov_times=3, long_steps=50))
    metrics = execute(trial, registry).metrics
    assert np.isfinite(metrics["vpt_lyapunov"]) and metrics["vpt_lyapunov"] >= 0
    assert 0.0 <= metrics["climate_ok"] <= 1.0 and np.isfinite(metrics["w1_sliced"])  # independent trajectories


def test_generated_data_is_cached(registry, monkeypatch):
    spec = registry.dataset("dysts")
    params = {**SMALL, "system": "Aizawa"}
    first = prepare(spec, params, seed=1)
    calls = []
    monkeypatch.setattr(G, "integrate_system", lambda *a, **k: calls.append(a) or 1 / 0)
    again = prepare(spec, params, seed=1)  # from the core's cache: no integration
    assert calls == [] and np.array_equal(first.train.x.numpy(), again.train.x.numpy())


def test_failures_name_the_system(monkeypatch):
    with pytest.raises(ValueError, match=r"no system 'Lorentz' \(did you mean Lorenz"):
        G.generate({**DYSTS.defaults, "system": "Lorentz"}, 0)
    with pytest.raises(ValueError, match="'MackeyGlass' is a delay-differential"):
        G.generate({**DYSTS.defaults, "system": "MackeyGlass"}, 0)
    with pytest.raises(G.IntegrationError, match=r"'Lorenz': trajectory leaves \|x\| < 1"):
        G.generate({**DYSTS.defaults, "system": "Lorenz", "length": 20, "bound": 1.0}, 0)

    class Failed:
        success, message, nfev = False, "step size too small", 10
        y = np.zeros((3, 1))

    monkeypatch.setattr(G, "_solve", lambda *a, **k: Failed())
    with pytest.raises(G.IntegrationError, match="'Lorenz': integration failed with DOP853 and Radau.*step size too small"):
        G.generate({**DYSTS.defaults, "system": "Lorenz", "length": 20}, 0)

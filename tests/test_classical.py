"""The fit protocol and the classical family: fitted models on small data, agreement with
reservoirpy, singular fits, planning, the free-run NRMSE and conformance."""
import math

import numpy as np
import pytest
import torch

from dpbench import metrics as M
from dpbench.data import Trajectory, prepare
from dpbench.harness import evaluate as E
from dpbench.harness.budget import build, build_at_budget
from dpbench.harness.suite import EvalConfig, TrainConfig, Trial, expand_trials, parse_suite
from dpbench.harness.trial import run_trial
from dpbench.hookspecs import hookimpl
from dpbench.models.classical import SPECS, DelayRidge, EchoState, SingularFit, parse_grid, ridge_fit
from dpbench.plugins import load_registry
from dpbench.specs import DatasetSpec, resolve
from dpbench.testing import check_model_spec

SMALL = {"length": 800, "window": 8}
FIT = dict(spectral_radius=0.9, leak=1.0, input_scaling=0.2, units=60, alpha="1e-8/1e-6")


@pytest.fixture(scope="module")
def lorenz(registry):
    return prepare(registry.dataset("lorenz"), SMALL, seed=0, use_cache=False)


def _fitted(registry, name, task, **hp):
    spec = registry.model(name)
    torch.manual_seed(0)
    model = build(spec, task, hp)
    resolve(spec.fit)(model, task.train, task.val, seed=0)
    return model.eval()


def _one_step(model, task):
    with torch.no_grad():
        return M.nrmse(model(task.test.x), task.test.y)


def test_fitted_models_beat_the_floors_on_lorenz(registry, lorenz):
    scores = {name: _one_step(_fitted(registry, name, lorenz, **(FIT if name == "esn" else {})), lorenz)
              for name in ("persistence", "mean", "linear", "ngrc", "esn")}
    assert scores["mean"] > 0.5  # climatology: about the target's own spread
    assert scores["persistence"] < scores["mean"]
    assert scores["linear"] < scores["persistence"], scores  # chosen for stable rollouts, not 1 step
    for name in ("ngrc", "esn"):
        assert scores[name] < 0.1 * scores["persistence"], scores


def test_persistence_repeats_the_last_target_value(registry):
    task = prepare(registry.dataset("narma10"), {"length": 400, "window": 4, "horizon": 3}, 0, use_cache=False)
    model = _fitted(registry, "persistence", task)
    y = model(task.test.x[:5])
    assert torch.equal(y, task.test.x[:5, -1:, 1:].expand(-1, 3, -1))  # column 0 is the exogenous u


def test_grid_is_searched_on_validation_and_fixed_values_pin_it(registry, lorenz):
    model = _fitted(registry, "linear", lorenz, delays="1/4", alpha="1e-6/1e-2")
    assert model.delays in (1, 4)
    model = _fitted(registry, "linear", lorenz, delays=3, alpha=1e-4)
    assert model.delays == 3 and model.w_out.shape[0] == 3 * 3
    assert parse_grid("alpha", "1e-6/1e-4") == (1e-6, 1e-4)
    with pytest.raises(ValueError, match="alpha"):
        parse_grid("alpha", "lots")


def test_ngrc_features_agree_with_reservoirpy_nvar():
    from reservoirpy.nodes import NVAR

    x = torch.randn(50, 3, dtype=torch.float64)
    model = DelayRidge(input_size=3, input_steps=5, output_size=3, output_steps=1, task="forecast",
                       delays=2, skip=2, cubic=False)
    nvar = NVAR(delay=2, order=2, strides=2)
    theirs = nvar.run(x.numpy())  # step t sees x[t], x[t-2] (zeros before the start)
    windows = torch.stack([x[t - 4:t + 1] for t in range(4, 50)])
    ours = model.features(windows).numpy()
    assert np.allclose(ours, theirs[4:], atol=1e-12)


def test_ngrc_readout_agrees_with_reservoirpy_nvar_ridge():
    from reservoirpy.nodes import NVAR, Ridge

    rng = np.random.default_rng(0)
    series = np.cumsum(rng.normal(size=(300, 2)), axis=0) * 0.1
    nvar, ridge = NVAR(delay=2, order=2, strides=1), Ridge(ridge=1e-3)
    feats = nvar.run(series)
    ridge.fit(feats[1:-1], series[2:] - series[1:-1])
    windows = torch.as_tensor(np.stack([series[t - 1:t + 1] for t in range(1, 299)]))
    targets = torch.as_tensor(series[2:, None, :])
    model = DelayRidge(input_size=2, input_steps=2, output_size=2, output_steps=1, task="forecast", delays=2)
    (w, c), = ridge_fit(model.features(windows), (targets[:, 0] - windows[:, -1]), (1e-3,))
    assert np.allclose(w, ridge.Wout, atol=1e-8) and np.allclose(c, ridge.bias.ravel(), atol=1e-8)


def test_esn_states_agree_with_reservoirpy_reservoir():
    from reservoirpy.nodes import Reservoir

    torch.manual_seed(0)
    model = EchoState(input_size=2, input_steps=10, output_size=1, output_steps=1, task="forecast", units=30,
                      spectral_radius=0.9, leak=0.7, input_scaling=0.5)
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    res = Reservoir(units=30, W=0.9 * model.w.numpy(), Win=0.5 * model.w_in.numpy(), bias=model.bias.numpy(), lr=0.7)
    theirs = []
    for xi in x.numpy():
        if res.initialized:
            res.reset()
        theirs.append(res.run(xi)[-1])
    assert np.allclose(model.states(x).numpy(), np.array(theirs), atol=1e-12)
    assert abs(float(torch.linalg.eigvals(model.w).abs().max()) - 1.0) < 1e-6  # unit spectral radius


def test_fixed_weights_are_counted_apart_from_the_budget(registry, lorenz):
    built = build_at_budget(registry.model("esn"), lorenz, {"units": 50}, budget=1000, tolerance=0.1)
    assert built.param_count == (3 + 50) * 3 + 3  # readout on [x(T); h(T)] and its constant
    assert built.fixed_count == 50 * 50 + 50 * 3 + 50  # W, W_in, b


def test_singular_fit_is_named_and_every_grid_point_must_fail():
    x = torch.randn(40, 2, dtype=torch.float64)
    collinear = torch.cat([x, 2 * x[:, :1]], dim=1)
    results = ridge_fit(collinear, x[:, :1], (0.0, 1e-3))
    assert isinstance(results[0], SingularFit) and "alpha=0" in str(results[0])
    assert not isinstance(results[1], SingularFit)


DUPLICATE_COLUMNS = DatasetSpec(
    name="twin", kind="forecast", description="two identical columns", citation="test",
    generate=lambda params, seed: Trajectory(
        values=np.repeat(np.sin(np.arange(600) * 0.1)[:, None], 2, axis=1), columns=["a", "b"]),
    metadata={"dt": 0.1},
)


class _TwinPlugin:
    @hookimpl
    def dpbench_register_datasets(self, register):
        register(DUPLICATE_COLUMNS)


def _trial(model, params, dataset, dparams=None):
    return Trial(model, params, dataset, dict(dparams or {}), 0, "cpu", TrainConfig(steps=5, param_budget=100),
                 EvalConfig(rollout_steps=10, rollout_starts=2, timing_repeats=1), "b")


def test_parameter_count_is_taken_after_the_fit(registry):
    res = run_trial(_trial("linear", {"delays": "1/4", "alpha": "1e-6"}, "lorenz", {"length": 600, "window": 8}), registry)
    k = res.info["fit"]["delays"]
    assert res.metrics["param_count"] == (k * 3) * 3 + 3  # VAR(k) on 3 components, plus the constant


def test_singular_fit_ends_the_trial_as_failed_and_the_run_goes_on():
    reg = load_registry(disable_third_party=True, extra_plugins=[("twin", _TwinPlugin())])
    bad = run_trial(_trial("linear", {"alpha": "0", "delays": "1"}, "twin", {"window": 4}), reg)
    assert bad.status == "failed" and "SingularFit" in bad.error and "alpha=0" in bad.error
    good = run_trial(_trial("linear", {"delays": "1"}, "twin", {"window": 4}), reg)
    assert good.status == "ok"


def test_fitted_trial_reports_fit_time_throughput_and_fixed_count(registry):
    res = run_trial(_trial("esn", {"units": 30, **{k: v for k, v in FIT.items() if k != "units"}},
                           "lorenz", {"length": 600, "window": 8}), registry)
    assert res.status == "ok", res.error
    m = res.metrics
    assert m["train_time_s"] > 0 and m["train_seq_per_s"] > 0 and m["infer_seq_per_s"] > 0
    assert m["fixed_param_count"] == 30 * 30 + 30 * 3 + 30 and m["param_count"] == (3 + 30) * 3 + 3
    assert math.isfinite(m["best_val_loss"]) and "vpt_lyapunov" in m
    assert set(res.info["fit"]) >= {"alpha", "leak", "spectral_radius", "input_scaling", "val_score"}


def test_fitted_models_on_recall_tasks_are_skipped_at_planning(registry):
    suite = parse_suite({"block": [{"models": ["esn", "lstm"], "datasets": ["copy:lag=3"]}]}, "t")
    trials, notes = expand_trials(suite, registry, cuda_available=False)
    assert [t.model for t in trials] == ["lstm"]
    assert notes == ["esn does not support recall tasks: skipped on copy"]


def test_free_run_nrmse_follows_jaeger_and_haas(registry):
    task = prepare(registry.dataset("mackey-glass"), {"length": 1500}, 0, use_cache=False)
    model = _fitted(registry, "persistence", task)
    got = E.free_run_nrmse(model, task, 84, 10, "cpu")
    from dpbench.rollout import closed_loop

    pred, truth = closed_loop(model, task.test_series, 32, task.target_index, 84, 10, "cpu")
    assert torch.allclose(pred, task.test_series[torch.linspace(0, len(task.test_series) - 32 - 84, 10).round().long()
                                                 + 31][:, None, :].expand_as(pred))
    assert got == pytest.approx(float(((pred[:, -1] - truth[:, -1]) ** 2).mean().sqrt()))
    metrics, _, _ = E.evaluate(model, task, EvalConfig(rollout_steps=20, rollout_starts=2), "cpu", registry)
    assert metrics["nrmse84"] == pytest.approx(E.free_run_nrmse(model, task, 84, E.FREE_RUN_STARTS, "cpu"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_conformance_kit_passes_for_fitted_models(spec):
    hp = {"units": 40, "alpha": "1e-6", "spectral_radius": 0.9, "leak": 1.0, "input_scaling": 0.5} if spec.name == "esn" else {}
    check_model_spec(spec, hparams=hp)


def test_conformance_kit_catches_a_fit_that_changes_nothing():
    from dataclasses import replace

    lazy = replace(next(s for s in SPECS if s.name == "linear"), name="lazy", fit=lambda *a, **k: {})
    with pytest.raises(AssertionError, match="the fit to change the outputs"):
        check_model_spec(lazy)


def test_relative_table_divides_by_ngrc_and_persistence():
    from dpbench.report.tables import relative_table
    from dpbench.results import TrialResult

    def trial(model, seed, vpt, nrmse):
        return TrialResult(f"{model}{seed}", model, {}, "lorenz", {}, seed, "cpu", "ok", None,
                           metrics={"vpt_lyapunov": vpt, "nrmse_1step": nrmse})

    trials = [trial("ngrc", 0, 6.0, 0.01), trial("ngrc", 1, 4.0, 0.03), trial("persistence", 0, 0.1, 0.2),
              trial("lstm", 0, 2.5, 0.04)]
    headers, rows = relative_table(trials)
    assert headers[3:] == ["VPT / ngrc", "VPT / persistence", "NRMSE / ngrc", "NRMSE / persistence"]
    lstm = next(r for r in rows if r[1] == "lstm")
    assert lstm[3:] == ["0.50×", "25.00×", "2.00×", "0.20×"]  # against seed means 5.0 / 0.02 and 0.1 / 0.2
    assert relative_table([trial("lstm", 0, 2.5, 0.04)]) is None


def test_relative_table_fits_the_terminal():
    from dpbench.report.terminal import relative_lines
    from dpbench.results import TrialResult

    trials = [TrialResult(f"{m}", m, {}, "lorenz", {"length": 800, "window": 16}, 0, "cpu", "ok", None,
                          metrics={"vpt_lyapunov": 1.0 + i, "nrmse_1step": 0.1}, block="chaotic-flow")
              for i, m in enumerate(("ngrc", "persistence", "plastic-rnn"))]
    lines = "\n".join(relative_lines(trials, width=100)).splitlines()
    assert max(map(len, lines)) <= 100 and "VPT / ngrc" in "\n".join(lines) and "cpu" in lines[0]

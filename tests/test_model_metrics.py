"""Metrics a model computes itself (``ModelSpec.metrics``) are registered metrics of table
``"model"``: a model plugin's own metric reaches the registry, the results, the report's
model-metric table, the terminal summary and ``dpbench compare`` (gated in its direction);
a key no plugin registered fails the trial and ``dpbench check-plugin`` with one line naming
it; the hybrid's and the soft-switch's metrics are registered with the right directions."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from dpbench import MetricSpec, ModelSpec, hookimpl
from dpbench.cli import main
from dpbench.compare import compare_docs
from dpbench.harness.evaluate import ContractError, check_model_metrics, collect_diagnostics
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import parse_suite
from dpbench.plugins import load_registry, set_registry
from dpbench.report.build import build_report
from dpbench.report.tables import model_metric_table
from dpbench.report.terminal import summary_text
from dpbench.results import load_results
from dpbench.specs import SpecError, resolve, validate_metric_spec
from dpbench.testing import check_model_spec, default_tasks, small_params

TITLE = "readout norm"


class LastStep(nn.Module):
    """``y[:, j] = W x[:, -1] + b`` for every output step: ``[B, T, D] -> [B, S, D_out]``."""

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int, task: str):
        super().__init__()
        self.steps, self.out = output_steps, output_size
        self.linear = nn.Linear(input_size, output_size * output_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x[:, -1]).view(len(x), self.steps, self.out)


def readout_norm(model: nn.Module, task, diagnostics) -> dict[str, float]:
    """Frobenius norm of the readout weights (the test model's own metric)."""
    return {"readout_norm": float(model.linear.weight.detach().norm())}


def unregistered(model: nn.Module, task, diagnostics) -> dict[str, float]:
    return {"made_up_key": 1.0}


class ModelMetricPlugin:
    @hookimpl
    def dpbench_register_models(self, register):
        common = dict(family="feedforward", citation="this test", factory=LastStep, tasks=("forecast",))
        register(ModelSpec("last-step", description="linear map of the last step", metrics=readout_norm, **common))
        register(ModelSpec("bad-metric", description="returns an unregistered key", metrics=unregistered, **common))

    @hookimpl
    def dpbench_register_metrics(self, register):
        register(MetricSpec("readout_norm", TITLE, "Frobenius norm of the readout", "this test",
                            higher_is_better=False, needs=("model",), tolerance=0.01, table="model"))


SUITE = {
    "name": "model-metric", "seeds": 1,
    "train": {"steps": 2, "batch_size": 8, "eval_every": 2, "param_budget": 100},
    "eval": {"rollout_steps": 5, "rollout_starts": 2, "timing_repeats": 1, "vpt_cap_lyapunov": 1,
             "long_lyapunov_times": 2, "long_steps": 20},
    "block": [{"name": "f", "models": ["last-step", "bad-metric"], "datasets": ["lorenz:length=300,window=8"]}],
}


@pytest.fixture(scope="module")
def registry():
    reg = load_registry(disable_third_party=True, extra_plugins=[("model-metric-test", ModelMetricPlugin())])
    set_registry(reg)
    yield reg
    set_registry(None)


@pytest.fixture(scope="module")
def plugin_run(registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("model-metric") / "run"
    run_dir, writer, _ = run_suite(parse_suite(SUITE, "test"), registry, out=str(out), quiet=True)
    return run_dir, {t.model: t for t in writer.trials}


def test_model_metric_is_registered_with_its_plugin(registry):
    spec = registry.metric("readout_norm")
    assert spec.plugin == "model-metric-test" and spec.table == "model" and spec.higher_is_better is False
    assert "readout_norm" in {s.name for s in registry.metrics_where(table="model")}


def test_model_metric_lands_in_results_report_and_summary(plugin_run, registry):
    run_dir, trials = plugin_run
    good = trials["last-step"]
    assert good.status == "ok" and good.metrics["readout_norm"] > 0
    doc = load_results(run_dir)
    stored = next(t for t in doc["trials"] if t["model"] == "last-step")
    assert stored["metrics"]["readout_norm"] == good.metrics["readout_norm"]
    headers, rows = model_metric_table(trials.values(), registry)
    assert [r[headers.index("metric")] for r in rows] == [TITLE]
    assert rows[0][headers.index("model")] == "last-step" and rows[0][headers.index("better")] == "lower"
    assert float(rows[0][headers.index("mean ± std")].split(" ± ")[0]) == pytest.approx(
        good.metrics["readout_norm"], rel=5e-3)
    md = build_report(run_dir).markdown
    section = md.split("Model-specific metrics", 1)[1].split("\n## ", 1)[0]
    assert TITLE in section and "last-step" in section and "bad-metric" not in section
    text = summary_text(list(trials.values()))
    assert any(TITLE in line and "last-step" in line for line in text.splitlines())


def test_unregistered_key_fails_the_trial_with_one_line_naming_it(plugin_run):
    _, trials = plugin_run
    bad = trials["bad-metric"]
    assert bad.status == "failed" and "\n" not in bad.error
    assert "'made_up_key'" in bad.error and "not a registered metric of table 'model'" in bad.error
    assert "readout_norm" in bad.error and "sigma_rel_err" in bad.error  # the valid choices


def test_model_metric_is_gated_by_compare_in_its_direction(plugin_run, tmp_path, capsys):
    run_dir, _ = plugin_run
    base = load_results(run_dir)
    first = next(t for t in base["trials"] if t["model"] == "last-step")
    for seed, factor in ((1, 1.01), (2, 0.99)):  # the gate wants 3 seeds per side
        extra = copy.deepcopy(first)
        extra.update(seed=seed, trial_id=f"{first['trial_id']}s{seed}")
        extra["metrics"]["readout_norm"] *= factor
        base["trials"].append(extra)
    worse, better = copy.deepcopy(base), copy.deepcopy(base)
    for doc, factor in ((worse, 3.0), (better, 0.2)):
        for t in doc["trials"]:
            if "readout_norm" in t["metrics"]:
                t["metrics"]["readout_norm"] *= factor
    status = {name: next(r.status for r in compare_docs(base, doc) if r.metric == "readout_norm")
              for name, doc in (("worse", worse), ("better", better), ("same", base))}
    assert status == {"worse": "regression", "better": "improved", "same": "ok"}
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "c.json").write_text(json.dumps(worse))
    assert main(["compare", str(tmp_path / "b.json"), str(tmp_path / "c.json")]) == 1
    assert "readout_norm" in capsys.readouterr().out


def test_check_plugin_reports_an_unregistered_key_as_a_contract_violation(registry, capsys):
    with pytest.raises(AssertionError, match=r"\[forecast\] metrics: raised ContractError: .*'made_up_key'"):
        check_model_spec(registry.model("bad-metric"))
    check_model_spec(registry.model("last-step"))
    assert main(["check-plugin", "bad-metric"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "made_up_key" in out


def test_model_metric_contract(registry):
    spec = registry.model("last-step")
    assert check_model_metrics(spec, {"readout_norm": 2}, registry) == {"readout_norm": 2.0}
    with pytest.raises(ContractError, match="'nrmse_1step', which is not a registered metric of table 'model'"):
        check_model_metrics(spec, {"nrmse_1step": 0.1}, registry)  # the harness's metric, not the model's
    with pytest.raises(ContractError, match="not a number"):
        check_model_metrics(spec, {"readout_norm": torch.tensor(1.0)}, registry)
    with pytest.raises(ContractError, match="must return a dict"):
        check_model_metrics(spec, 1.0, registry)
    with pytest.raises(SpecError, match="compute must be None"):
        validate_metric_spec(MetricSpec("m", "t", "d", "c", higher_is_better=False, compute=len, table="model"))


def test_hybrid_parameters_are_registered_for_every_system(registry):
    from dpbench.models._hybrid import SYSTEMS, hybrid_metrics
    from dpbench.models.hybrid import PRIORS

    assert set(SYSTEMS) == set(PRIORS)
    for params in PRIORS.values():
        for p in params:
            hat, err = registry.metric(f"{p}_hat"), registry.metric(f"{p}_rel_err")
            assert (hat.table, hat.higher_is_better, hat.gate) == ("model", None, "none")
            assert (err.table, err.higher_is_better, err.gate) == ("model", False, "accuracy")
            assert err.tolerance > 0
    task = default_tasks(("forecast",))["forecast"]
    model = registry.model("hybrid").build(3, 8, 3, 2, "forecast", metadata=task.metadata)
    values = check_model_metrics(registry.model("hybrid"), hybrid_metrics(model, task, {}), registry)
    assert set(values) == {f"{p}_{s}" for p in PRIORS["lorenz"] for s in ("hat", "rel_err")}
    assert values["sigma_hat"] == pytest.approx(PRIORS["lorenz"]["sigma"])  # untrained: the prior


def test_soft_switch_gate_metric_is_registered_higher_is_better(registry):
    from dpbench.data import prepare

    spec = registry.metric("gate_regime_corr")
    assert (spec.table, spec.higher_is_better, spec.gate) == ("model", True, "accuracy")
    dspec = registry.dataset("switching-delay")
    task = prepare(dspec, {**small_params(dspec), "window": 8, "horizon": 2}, seed=0, use_cache=False)
    mspec = registry.model("soft-switch")
    model = mspec.build(task.input_size, 8, task.output_size, 2, "forecast").eval()
    diag = collect_diagnostics(model, task.test.x, "cpu", 64)
    values = check_model_metrics(mspec, resolve(mspec.metrics)(model, task, diag), registry)
    assert set(values) == {"gate_regime_corr"} and 0.0 <= values["gate_regime_corr"] <= 1.0

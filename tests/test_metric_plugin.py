"""A metric registered by a plugin (and nothing else) shows up in the results, the run
summary, the report and the CI gate; the registry validates metric specs and the
evaluation refuses a metric that returns unregistered keys."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from dpbench import MetricSpec, hookimpl
from dpbench.cli import main
from dpbench.compare import compare_docs
from dpbench.harness.evaluate import ContractError, _values
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import parse_suite
from dpbench.plugins import load_registry, set_registry
from dpbench.report.build import build_report
from dpbench.report.summary import summary_rows
from dpbench.results import load_results, trials_of
from dpbench.specs import SpecError, validate_metric_spec

TITLE = "max |1-step error| (std units)"


def max_abs_error(ctx) -> float:
    """Largest absolute one-step error on the test windows (a test metric)."""
    return float((ctx.predictions[:, :1] - ctx.task.test.y[:, :1]).abs().max())


class MetricPlugin:
    @hookimpl
    def dpbench_register_metrics(self, register):
        register(MetricSpec("max_abs_error", TITLE, "largest absolute one-step test error", "this test",
                            higher_is_better=False, compute=max_abs_error, tasks=("forecast",), tolerance=0.01))


SUITE = {
    "name": "metric-plugin", "seeds": 2,
    "train": {"steps": 4, "batch_size": 8, "eval_every": 2, "param_budget": 400},
    "eval": {"rollout_steps": 10, "rollout_starts": 2, "timing_repeats": 1, "vpt_cap_lyapunov": 1,
             "long_lyapunov_times": 5, "long_steps": 50},
    "block": [{"name": "f", "models": ["fnn"], "datasets": ["lorenz:length=300,window=8"]}],
}


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    registry = load_registry(disable_third_party=True, extra_plugins=[("metric-test", MetricPlugin())])
    set_registry(registry)
    out = tmp_path_factory.mktemp("metric-plugin") / "run"
    try:
        run_dir, writer, _ = run_suite(parse_suite(SUITE, "test"), registry, out=str(out), quiet=True)
        yield registry, run_dir, writer
    finally:
        set_registry(None)


def test_plugin_metric_is_registered_with_its_plugin(plugin_run):
    registry, _, _ = plugin_run
    spec = registry.metric("max_abs_error")
    assert spec is not None and spec.plugin == "metric-test"
    assert registry.metric("vpt_lyapunov@eps=0.3").name == "vpt_lyapunov"  # qualified keys resolve


def test_plugin_metric_lands_in_the_results(plugin_run):
    _, run_dir, writer = plugin_run
    values = [t.metrics["max_abs_error"] for t in writer.trials]
    assert len(values) == 2 and all(v > 0 for v in values)
    doc = load_results(run_dir)
    assert [t["metrics"]["max_abs_error"] for t in doc["trials"]] == values
    assert "max_abs_error" in (run_dir / "results.csv").read_text()


def test_plugin_metric_is_a_summary_column(plugin_run):
    registry, _, writer = plugin_run
    headers, rows = summary_rows(writer.trials, registry)["forecast"]
    col = headers.index(TITLE)
    mean = sum(t.metrics["max_abs_error"] for t in writer.trials) / 2
    assert float(rows[0][col].split(" ± ")[0]) == pytest.approx(mean, rel=5e-3)


def test_plugin_metric_is_a_report_column(plugin_run):
    _, run_dir, _ = plugin_run
    md = build_report(run_dir).markdown
    header = next(line for line in md.splitlines() if line.startswith("| dataset") and "NRMSE 1-step" in line)
    assert TITLE.replace("|", "\\|") in header or TITLE in header


def test_plugin_metric_is_gated_by_compare_in_its_direction(plugin_run, tmp_path, capsys):
    _, run_dir, _ = plugin_run
    base = load_results(run_dir)
    third = copy.deepcopy(base["trials"][0])          # the gate wants 3 seeds per side
    third.update(seed=2, trial_id=third["trial_id"] + "s2")
    third["metrics"]["max_abs_error"] *= 1.01
    base["trials"].append(third)
    worse, better = copy.deepcopy(base), copy.deepcopy(base)
    for t in worse["trials"]:
        t["metrics"]["max_abs_error"] *= 3.0   # lower is better: tripled error regresses
    for t in better["trials"]:
        t["metrics"]["max_abs_error"] *= 0.2
    status = {name: next(r.status for r in compare_docs(base, doc) if r.metric == "max_abs_error")
              for name, doc in (("worse", worse), ("better", better), ("same", base))}
    assert status == {"worse": "regression", "better": "improved", "same": "ok"}
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "c.json").write_text(json.dumps(worse))
    assert main(["compare", str(tmp_path / "b.json"), str(tmp_path / "c.json")]) == 1
    assert "max_abs_error" in capsys.readouterr().out


@pytest.mark.parametrize("change, fragment", [
    ({"name": "bad@name"}, "must match"),
    ({"name": "bad-name"}, "may not contain"),
    ({"higher_is_better": "up"}, "higher_is_better"),
    ({"needs": ("telepathy",)}, "needs"),
    ({"table": "sidebar"}, "table='sidebar'"),
    ({"higher_is_better": None}, "needs a direction"),
])
def test_invalid_metric_specs_are_refused_by_name(change, fragment):
    fields = dict(name="ok_metric", title="t", description="d", citation="c", higher_is_better=True)
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(")):
        validate_metric_spec(MetricSpec(**{**fields, **change}))


def test_a_metric_returning_an_unregistered_key_breaks_the_contract():
    registry = load_registry(disable_third_party=True)
    spec = registry.metric("nrmse_1step")
    assert _values(spec, 0.5, registry) == {"nrmse_1step": 0.5}
    with pytest.raises(ContractError, match="not a registered metric"):
        _values(spec, {"made_up": 1.0}, registry)
    with pytest.raises(ContractError, match="not a number"):
        _values(spec, {"nrmse_1step": torch.tensor(1.0)}, registry)

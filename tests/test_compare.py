"""The CI gate ``dpbench compare``: exit codes, the statistics, direction-aware accuracy
rules, normalisation and one-line usage errors. Fixtures are results.json documents
written programmatically (no training)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from dpbench.cli import main
from dpbench.compare import apply_context, compare_docs, exit_code, machine_differences, noise_reasons
from dpbench.params import UsageError
from dpbench.results import SCHEMA_VERSION


def make_trial(model: str, seed: int, rng: np.random.Generator, speed: float = 1000.0, n: int = 10,
               metrics: dict | None = None, status: str = "ok") -> dict:
    """A trial whose throughput samples scatter ±2 % around ``speed`` seq/s."""
    train = list(speed * (1 + 0.02 * rng.standard_normal(n)))
    infer = list(20 * speed * (1 + 0.02 * rng.standard_normal(n)))
    base = {"accuracy": 0.8, "cross_entropy": 0.5, "param_count": 5000.0}
    return {"trial_id": f"{model}{seed}", "model": model, "model_params": {}, "dataset": "copy",
            "dataset_params": {"lag": 5}, "seed": seed, "device": "cpu", "status": status, "error": None,
            "block": "", "metrics": {**base, **(metrics or {}), "train_seq_per_s": float(np.median(train))},
            "samples": {"train_seq_per_s": train, "infer_seq_per_s": infer}, "info": {}}


def make_doc(seed: int = 0, models=("lstm", "gru"), seeds=(0, 1), calibration: float | None = None, **kw) -> dict:
    rng = np.random.default_rng(seed)
    doc = {"schema_version": SCHEMA_VERSION, "run_id": f"r{seed}", "environment": {}, "config": {},
           "records": [], "derived": [], "trials": [make_trial(m, s, rng, **kw) for m in models for s in seeds]}
    if calibration is not None:
        doc["calibration"] = {"samples": [calibration], "median": calibration, "unit": "workloads/s"}
    return doc


def scale_throughput(doc: dict, factor: float, model: str | None = None) -> dict:
    out = copy.deepcopy(doc)
    for t in out["trials"]:
        if model is None or t["model"] == model:
            t["samples"] = {k: [v * factor for v in vals] for k, vals in t["samples"].items()}
    return out


def write(tmp_path, name: str, doc) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(folder)


def gate(tmp_path, base, cur, *args) -> int:
    return main(["compare", write(tmp_path, "base", base), write(tmp_path, "cur", cur), *args])


def test_identical_runs_pass(tmp_path, capsys):
    doc = make_doc()
    assert gate(tmp_path, doc, doc) == 0
    out = capsys.readouterr().out
    assert "0 regression(s)" in out and "train_seq_per_s" in out and "accuracy" in out


def test_halved_throughput_is_a_regression(tmp_path, capsys):
    base = make_doc(0)
    assert gate(tmp_path, base, scale_throughput(make_doc(1), 0.5, "lstm")) == 1
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "regression" in ln and "seq_per_s" in ln]
    assert lines and all("lstm" in ln for ln in lines)  # gru was not slowed down
    assert any("0.5" in ln for ln in lines)


def test_three_percent_noise_level_change_passes(tmp_path, capsys):
    # significant with 20 samples, but smaller than the 10 % threshold
    assert gate(tmp_path, make_doc(0), scale_throughput(make_doc(1), 0.97)) == 0


def test_large_but_insignificant_change_is_not_flagged():
    """A 15 % drop measured with 2 samples per side cannot reach p < 0.05 (the exact
    one-sided Mann-Whitney minimum is 1/6): the threshold alone does not fail a build."""
    base = make_doc(0, models=("lstm",), seeds=(0,), n=2)
    rows = compare_docs(base, scale_throughput(make_doc(1, models=("lstm",), seeds=(0,), n=2), 0.85))
    row = next(r for r in rows if r.metric == "train_seq_per_s")
    assert row.status == "ok" and row.ratio < 0.9 and row.p_value == pytest.approx(1 / 6)


def test_smoke_sized_samples_can_still_fail_the_gate():
    """3 vs 3 samples (smoke suite, one seed): halving gives complete separation, exact
    one-sided p = 1/20 = alpha, which counts."""
    base = make_doc(0, models=("lstm",), seeds=(0,), n=3)
    row = next(r for r in compare_docs(base, scale_throughput(make_doc(1, models=("lstm",), seeds=(0,), n=3), 0.5))
               if r.metric == "train_seq_per_s")
    assert row.p_value == pytest.approx(0.05) and row.status == "regression"


def test_p_value_matches_an_independent_mann_whitney():
    base, cur = make_doc(0, models=("lstm",)), scale_throughput(make_doc(1, models=("lstm",)), 0.8)
    row = next(r for r in compare_docs(base, cur) if r.metric == "infer_seq_per_s")
    b = [v for t in base["trials"] for v in t["samples"]["infer_seq_per_s"]]
    c = [v for t in cur["trials"] for v in t["samples"]["infer_seq_per_s"]]
    assert row.n == (len(b), len(c)) == (20, 20)
    assert row.p_value == pytest.approx(mannwhitneyu(c, b, alternative="less").pvalue)
    assert row.ratio == pytest.approx(np.median(c) / np.median(b))
    assert row.status == "regression"


def test_faster_is_reported_as_improvement_not_regression(tmp_path, capsys):
    assert gate(tmp_path, make_doc(0), scale_throughput(make_doc(1), 2.0)) == 0
    assert "improved" in capsys.readouterr().out


@pytest.mark.parametrize("metric, base, worse, better", [
    ("accuracy", 0.8, 0.6, 0.95),          # higher is better
    ("cross_entropy", 0.5, 0.8, 0.2),      # lower is better
    ("nrmse_rollout", 0.5, 0.8, 0.2),
    ("vpt_lyapunov", 2.0, 1.0, 3.0),
])
def test_accuracy_metrics_are_direction_aware(metric, base, worse, better):
    b = make_doc(0, seeds=(0, 1, 2), metrics={metric: base})

    def status(value):
        rows = compare_docs(b, make_doc(1, seeds=(0, 1, 2), metrics={metric: value}))
        return {r.status for r in rows if r.metric == metric}

    assert status(worse) == {"regression"}
    assert status(better) == {"improved"}
    assert status(base * 1.02) == {"ok"}  # inside the 10 % tolerance


def test_accuracy_change_inside_the_seed_spread_passes():
    b = make_doc(0, seeds=(0, 1, 2))
    for t, acc in zip(b["trials"], (0.5, 0.9, 0.7) * 2):
        t["metrics"]["accuracy"] = acc
    c = copy.deepcopy(b)
    for t, acc in zip(c["trials"], (0.4, 0.8, 0.6) * 2):  # median 0.1 worse, ranks overlap
        t["metrics"]["accuracy"] = acc
    rows = [r for r in compare_docs(b, c) if r.metric == "accuracy"]
    assert {r.status for r in rows} == {"ok"} and all("not significant" in r.note for r in rows)
    for t, acc in zip(c["trials"], (0.3, 0.35, 0.4) * 2):  # every seed below every baseline seed
        t["metrics"]["accuracy"] = acc
    rows = [r for r in compare_docs(b, c) if r.metric == "accuracy"]
    assert {r.status for r in rows} == {"regression"}
    assert all(r.p_value == pytest.approx(float(mannwhitneyu([0.3, 0.35, 0.4], [0.5, 0.9, 0.7],
                                                             alternative="less").pvalue)) for r in rows)


def test_accuracy_with_fewer_than_three_seeds_is_too_few_seeds(tmp_path, capsys):
    b = make_doc(0, seeds=(0, 1))
    c = make_doc(1, seeds=(0, 1), metrics={"accuracy": 0.1})  # a huge drop, but 2 seeds
    rows = [r for r in compare_docs(b, c) if r.metric == "accuracy"]
    assert {r.status for r in rows} == {"untested"} and all("too few seeds" in r.note for r in rows)
    assert gate(tmp_path, b, c) == 0
    assert "with too few seeds" in capsys.readouterr().out


def test_normalize_removes_a_uniformly_slower_machine(tmp_path, capsys):
    base = make_doc(0, calibration=100.0)
    slow = scale_throughput(make_doc(1, calibration=60.0), 0.6)  # same code, 40 % slower machine
    assert gate(tmp_path, base, slow) == 3  # the calibrations say: another machine
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cur"), "--normalize"]) == 0


def test_normalize_prefers_a_trials_own_calibration():
    base = make_doc(0, models=("lstm",), calibration=100.0)
    cur = scale_throughput(make_doc(1, models=("lstm",), calibration=100.0), 0.5)
    for t in cur["trials"]:  # load arrived mid-run: this trial's own calibration saw it
        t["info"]["calibration"] = {"median": 50.0}
    assert {r.status for r in compare_docs(base, cur) if r.metric == "train_seq_per_s"} == {"regression"}
    assert {r.status for r in compare_docs(base, cur, normalize=True) if r.metric == "train_seq_per_s"} == {"ok"}


def test_relative_to_a_model_in_the_same_run(tmp_path):
    base = make_doc(0)
    slow_machine = scale_throughput(make_doc(1), 0.6)                        # everything 40 % slower
    slow_gru = scale_throughput(scale_throughput(make_doc(1), 0.6), 0.5, "gru")  # and gru halved
    assert gate(tmp_path, base, slow_machine, "--relative-to", "lstm") == 0
    rows = compare_docs(base, slow_gru, relative_to="lstm")
    bad = {(r.model, r.metric) for r in rows if r.regression}
    assert bad == {("gru", "train_seq_per_s"), ("gru", "infer_seq_per_s")}
    assert not any(r.model == "lstm" and r.metric in ("train_seq_per_s", "infer_seq_per_s") for r in rows)


def test_calibration_has_the_shape_compare_reads():
    from dpbench.calibration import calibrate

    cal = calibrate(repeats=3, inner=1, warmup=1)
    assert len(cal["samples"]) == 3 and all(s > 0 for s in cal["samples"])
    assert cal["median"] == sorted(cal["samples"])[1] and cal["unit"] == "workloads/s"
    from dpbench.compare import calibration_median

    assert calibration_median({"calibration": cal}, "run") == cal["median"]


def test_markdown_format_is_a_table(tmp_path, capsys):
    assert gate(tmp_path, make_doc(0), scale_throughput(make_doc(1), 0.5), "--format", "md") == 1
    out = capsys.readouterr().out
    assert out.startswith("### dpbench: ❌")
    header = next(ln for ln in out.splitlines() if ln.startswith("| model"))
    assert header.count("|") == 11 and "| verdict" in header


def test_failed_trials_are_not_compared():
    base = make_doc(0, models=("lstm",))
    cur = make_doc(1, models=("lstm",), status="failed")
    with pytest.raises(UsageError, match="nothing comparable"):
        compare_docs(base, cur)


@pytest.mark.parametrize("make_args, fragment", [
    (lambda tp: [write(tp, "a", "{not json"), write(tp, "b", make_doc())], "not valid JSON"),
    (lambda tp: [write(tp, "a", {"schema_version": 99, "trials": []}), write(tp, "b", make_doc())],
     "schema_version must be"),
    (lambda tp: [str(tp / "missing"), write(tp, "b", make_doc())], "cannot read results"),
    (lambda tp: [write(tp, "a", make_doc(models=("lstm",))), write(tp, "b", make_doc(models=("gru",)))],
     "nothing comparable"),
    (lambda tp: [write(tp, "a", make_doc()), write(tp, "b", make_doc()), "--normalize"], "has no calibration"),
    (lambda tp: [write(tp, "a", make_doc()), write(tp, "b", make_doc()), "--threshold", "2"], "must be in (0, 1)"),
    (lambda tp: [write(tp, "a", make_doc()), write(tp, "b", make_doc()), "--relative-to", "nosuch"],
     "--relative-to nosuch: no such model"),
])
def test_malformed_inputs_exit_2_with_one_line(tmp_path, capsys, make_args, fragment):
    assert main(["compare", *make_args(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and err.startswith("dpbench: error:")


def with_env(doc: dict, **env) -> dict:
    out = copy.deepcopy(doc)
    out["environment"] = {"cpu": "Intel(R) Xeon(R) Platinum", "cpu_flags": ["avx2", "avx512f", "fma"],
                          "torch": "2.13.0+cpu", "torch_threads": 2, "cpu_count": 2, "workers": 1,
                          "load_start": [0.5, 0.5, 0.5], "load_end": [0.6, 0.5, 0.5], **env}
    return out


def test_foreign_machine_makes_throughput_inconclusive_exit_3(tmp_path, capsys):
    base = with_env(make_doc(0, seeds=(0, 1, 2)))
    cur = with_env(scale_throughput(make_doc(1, seeds=(0, 1, 2)), 0.5), cpu="AMD EPYC 7B13",
                   cpu_flags=["avx2", "fma"])
    assert gate(tmp_path, base, cur) == 3
    out = capsys.readouterr().out
    assert "inconclusive (different machine: CPU Intel(R) Xeon(R) Platinum vs AMD EPYC 7B13" in out
    assert "different machine: CPU Intel(R) Xeon(R) Platinum vs AMD EPYC 7B13; ISA only baseline avx512f" in out
    rows = apply_context(compare_docs(base, cur), machine_differences(base, cur), [], False)
    assert {r.status for r in rows if r.metric.endswith("seq_per_s")} == {"inconclusive"}
    assert all("machines differ" in r.note for r in rows if r.metric == "accuracy")
    # --normalize: the throughput verdicts are made again (here the slowdown is real)
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cur"), "--normalize"]) == 2  # no calibration
    assert exit_code(apply_context(compare_docs(base, cur), machine_differences(base, cur), [], True)) == 1


@pytest.mark.parametrize("field, value, phrase", [
    ("torch", "2.4.0", "torch 2.13.0+cpu vs 2.4.0"),
    ("torch_threads", 1, "threads 2 vs 1"),
    ("workers", 2, "workers 1 vs 2"),
    ("cpu_flags", ["avx2", "avx512f", "fma", "amx_tile"], "ISA only current amx_tile"),
])
def test_each_environment_field_is_checked(field, value, phrase):
    base = with_env(make_doc(0))
    assert machine_differences(base, base) == []
    assert machine_differences(base, with_env(make_doc(0), **{field: value})) == [phrase]


def test_oversubscribed_run_is_inconclusive_not_a_regression(tmp_path, capsys):
    base = with_env(make_doc(0))
    slow = with_env(scale_throughput(make_doc(1), 0.5), load_start=[7.0, 6.0, 5.0])
    assert noise_reasons(slow, "current") == ["current: load 7.0 on 2 cores at start"]
    assert gate(tmp_path, base, slow) == 3
    assert "inconclusive (noisy run: current: load 7.0 on 2 cores at start)" in capsys.readouterr().out
    noisy_cal = with_env(make_doc(1))
    noisy_cal["calibration"] = {"samples": [10.0, 30.0, 12.0, 11.0], "median": 11.5}
    assert noise_reasons(noisy_cal, "x") == ["x: calibration spread 174%"]


def test_runner_records_load_and_warns_when_busy(monkeypatch, tmp_path, capsys):
    from dpbench import environment as E
    from dpbench.harness import runner
    from dpbench.harness.suite import load_suite, override
    from dpbench.plugins import get_registry

    def fake_run(trials, registry, run_dir, writer, *a, **k):
        print("FIRST TRIAL", file=__import__("sys").stderr)

    monkeypatch.setattr(runner, "calibrate", lambda: {"median": 1.0, "samples": [1.0]})
    monkeypatch.setattr(runner, "run_trials", fake_run)
    monkeypatch.setattr(E.os, "getloadavg", lambda: (9.0, 8.0, 7.0))
    monkeypatch.setattr(E.os, "cpu_count", lambda: 2)
    suite = override(load_suite("smoke"), "lstm", "lorenz", 1, None)
    run_dir, writer, _ = runner.run_suite(suite, get_registry(), out=str(tmp_path / "run"), quiet=True)
    err = capsys.readouterr().err
    assert err.index("machine is busy before the first trial (load average 9.0 on 2 cores)") < err.index("FIRST TRIAL")
    env = json.loads((run_dir / "results.json").read_text())["environment"]
    assert env["load_start"] == [9.0, 8.0, 7.0] and env["load_end"] == [9.0, 8.0, 7.0]

    env = E.environment()
    assert isinstance(env["cpu_flags"], list) and all(isinstance(f, str) for f in env["cpu_flags"])
    assert env["load_start"] is None or len(env["load_start"]) == 3
    assert E.busy_warning([3.0, 1.0, 1.0], 2).startswith("dpbench: warning: the machine is busy")
    assert E.busy_warning([1.0, 1.0, 1.0], 2) is None and E.busy_warning(None, 2) is None

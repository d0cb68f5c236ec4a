"""``dpbench report``: a real tiny run → report.md with tables and valid, non-blank PNGs;
tables' best-marking and speedups on hand-built trials; robustness to partial runs."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from dpbench.cli import main
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import parse_suite
from dpbench.report import tables as T
from dpbench.report.build import build_report
from dpbench.report.diagnostics import plot_diagnostics
from dpbench.results import TrialResult

SUITE = {
    "name": "report-fixture", "seeds": 1,
    "train": {"steps": 6, "batch_size": 8, "eval_every": 3, "param_budget": 600},
    "eval": {"rollout_steps": 20, "rollout_starts": 2, "timing_repeats": 2, "gradient_sensitivity": True,
             "vpt_cap_lyapunov": 1, "long_lyapunov_times": 5, "long_steps": 50},
    "block": [
        {"name": "f", "models": ["rnn", "lstm"], "datasets": ["lorenz:length=300,window=8"]},
        {"name": "r", "models": ["rnn", "lstm"], "datasets": ["copy:lag=[2,4],symbols=2,n_train=16,n_val=8,n_test=8"]},
    ],
}


@pytest.fixture(scope="module")
def run_dir(registry, tmp_path_factory) -> Path:
    """A real run (6 tiny trials) plus one diagnostics map drawn the way the harness does."""
    out = tmp_path_factory.mktemp("report") / "run"
    run_dir, writer, _ = run_suite(parse_suite(SUITE, "test"), registry, out=str(out), quiet=True)
    t = writer.trials[0]
    folder = run_dir / "diagnostics"
    folder.mkdir(exist_ok=True)
    attn = torch.softmax(torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    plot_diagnostics({"attention": attn}, folder, f"{t.model}-{t.dataset}-{t.trial_id}", title="fixture")
    return run_dir


def image_links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def test_report_writes_markdown_and_nonblank_pngs(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"report: {run_dir / 'report.md'}" in out
    assert "NRMSE 1-step" in out and "max lag at 90 % accuracy" in out  # terminal tables
    md = (run_dir / "report.md").read_text()
    for title in ("Accuracy", "Long-dependency recall", "Throughput and memory", "Gradient sensitivity",
                  "Forecasts", "Attention and memory maps"):
        assert f"## {title}" in md
    links = image_links(md)
    names = {Path(p).stem.split("-")[0] for p in links}
    assert {"recall", "cost", "gradient", "forecast"} <= names
    assert any(p.startswith("diagnostics/") for p in links)
    for rel in links:
        img = mpimg.imread(run_dir / rel)  # decodes: a valid PNG
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert float(img[..., :3].std()) > 0.02, rel  # not a blank canvas


def test_published_readme_links_resolve_from_its_own_folder(run_dir, tmp_path):
    from dpbench.report.build import write_report

    out, _ = write_report(run_dir, tmp_path / "elsewhere" / "README.md", title="baseline", published=True)
    md = out.read_text()
    assert md.startswith("# baseline\n") and f"dpbench report {run_dir.as_posix()} --published" in md
    links = image_links(md)
    assert links and all((out.parent / rel).resolve().is_file() for rel in links)


def test_accuracy_table_has_every_cell_and_marks_the_best(run_dir):
    from dpbench.results import load_results, trials_of

    trials = trials_of(load_results(run_dir))
    headers, rows = T.metric_table(trials, "recall", "accuracy")
    assert headers[:4] == ["dataset", "model", "device", "seeds"]
    assert len(rows) == 4 and all(r[3] == "1" for r in rows)  # 2 lags x 2 models, 1 seed each
    col = headers.index("accuracy")
    for lag in ("lag=2", "lag=4"):
        cells = [r for r in rows if lag in r[0]]
        means = [float(r[col].split(" ± ")[0]) for r in cells]
        marked = [float(r[col].split(" ± ")[0]) for r in cells if T.BEST_MARK in r[col]]
        assert marked and all(m == max(means) for m in marked)


def fake(model: str, seed: int, metrics: dict, status: str = "ok", dataset: str = "lorenz") -> TrialResult:
    return TrialResult(f"{model}{seed}{dataset}", model, {}, dataset, {}, seed, "cpu", status,
                       None if status == "ok" else "boom", metrics=metrics)


def test_best_is_direction_aware_and_speedup_is_relative_to_lstm():
    trials = [fake("lstm", s, {"nrmse_1step": 0.5, "vpt_lyapunov": 1.0, "train_seq_per_s": 100.0 + s}) for s in (0, 1)]
    trials += [fake("gru", s, {"nrmse_1step": 0.3, "vpt_lyapunov": 0.5, "train_seq_per_s": 300.0 + s}) for s in (0, 1)]
    headers, rows = T.metric_table(trials, "forecast", "accuracy")
    by_model = {r[1]: r for r in rows}
    nrmse, vpt = headers.index("NRMSE 1-step"), headers.index("VPT (LT)")
    assert T.BEST_MARK in by_model["gru"][nrmse] and T.BEST_MARK not in by_model["lstm"][nrmse]
    assert T.BEST_MARK in by_model["lstm"][vpt] and T.BEST_MARK not in by_model["gru"][vpt]
    cost = T.cost_by_model(trials)
    assert T.speedup(cost, ("gru", "cpu"), "train_seq_per_s") == pytest.approx(301.0 / 101.0)
    assert math.isnan(T.speedup(cost, ("gru", "cuda"), "train_seq_per_s"))


def test_device_ratio_table_pairs_the_same_model_across_devices():
    from dataclasses import replace

    cpu = [fake("lstm", s, {"train_seq_per_s": 100.0, "infer_seq_per_s": 400.0}) for s in (0, 1)]
    cpu += [fake("gru", 0, {"train_seq_per_s": 50.0, "infer_seq_per_s": 10.0})]
    gpu = [replace(t, device="cuda", trial_id=t.trial_id + "g",
                   metrics={"train_seq_per_s": 250.0, "infer_seq_per_s": 100.0})
           for t in cpu if t.model == "lstm"]
    assert T.device_ratio_table(cpu) is None                    # one device: nothing to pair
    headers, rows = T.device_ratio_table(cpu + gpu)
    assert [r[0] for r in rows] == ["lstm"]                     # gru ran on cpu only
    assert rows[0][headers.index("train ratio")] == "2.50×"
    assert rows[0][headers.index("infer ratio")] == "0.25×"


def test_report_with_another_run_adds_its_throughput(run_dir, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    doc = json.loads((other / "results.json").read_text())
    for rec in doc["records"] + doc["trials"]:
        rec["device"] = "cuda"
    (other / "results.json").write_text(json.dumps(doc))
    rep = build_report(run_dir, with_runs=(other,))
    assert "The same models on two devices" in rep.markdown and "cuda / cpu" in rep.markdown


def test_partial_run_with_failures_and_missing_metrics(tmp_path):
    """Failed trials, a missing metric and no forecasts/ folder: the report still builds,
    lists the failure, and skips what is absent."""
    trials = [fake("lstm", 0, {"accuracy": 0.9}, dataset="copy"), fake("gru", 0, {}, status="failed", dataset="copy"),
              fake("rnn", 0, {"accuracy": None, "train_seq_per_s": 5.0}, dataset="copy")]
    doc = {"schema_version": 1, "run_id": "partial", "environment": {}, "config": {}, "records": [],
           "derived": [], "trials": [t.__dict__ for t in trials]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    rep = build_report(tmp_path)
    assert "## Trials that did not finish" in rep.markdown and "boom" in rep.markdown
    assert "Forecasts" not in rep.sections and "Gradient sensitivity" not in rep.sections
    rnn_row = next(ln for ln in rep.markdown.splitlines() if ln.startswith("| copy") and "| rnn" in ln)
    assert rnn_row.split("|")[5].strip() == "-"  # its accuracy is missing, not 0
    assert all(p.is_file() for p in rep.figures)


def test_bad_run_dir_is_a_usage_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dpbench: error: cannot read results") and err.count("\n") == 1
    assert "no such run directory or file" in err and "Error" not in err  # plain words
    assert not (tmp_path / "nope").exists()  # nothing created for a bad argument


def test_gradient_curve_is_plotted_against_offsets(run_dir):
    """The figure's x data run from −(T−1) to 0 and the y data are the stored curve."""
    import matplotlib.pyplot as plt

    from dpbench.report import figures as F
    from dpbench.results import load_results, trials_of

    trials = trials_of(load_results(run_dir))
    captured = {}
    original = plt.Axes.plot

    def spy(self, x, y, *a, **k):
        captured[k.get("label")] = (np.asarray(x), np.asarray(y))
        return original(self, x, y, *a, **k)

    plt.Axes.plot = spy
    try:
        F.plot_gradient_sensitivity([t for t in trials if t.dataset_params.get("lag") == 2], run_dir)
    finally:
        plt.Axes.plot = original
    lstm = [np.array(t.samples["grad_sensitivity"]) for t in trials
            if t.model == "lstm" and t.dataset_params.get("lag") == 2]
    x, y = captured["lstm"]
    assert x[0] == -(len(lstm[0]) - 1) and x[-1] == 0
    np.testing.assert_allclose(y, np.mean(lstm, axis=0), rtol=1e-12)

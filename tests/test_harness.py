"""The harness end to end: rollouts against an exact oracle, result files, determinism,
budget sizing, derived long-dependency metrics."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dpbench import hookimpl
from dpbench.data import Trajectory, prepare
from dpbench.harness.budget import build_at_budget
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import EvalConfig, TrainConfig, Trial, parse_suite
from dpbench.harness.trial import execute
from dpbench.plugins import load_registry
from dpbench.results import CSV_COLUMNS, load_results
from dpbench.specs import DatasetSpec, ModelSpec

OMEGA = 0.3


def rotation(params, seed):
    t = np.arange(params["length"])
    return Trajectory(values=np.stack([3 + np.cos(OMEGA * t), -1 + 2 * np.sin(OMEGA * t)], axis=1), columns=["c", "s"])


class RotationOracle(nn.Module):
    """Exact next step of the rotation, in the harness's normalised coordinates."""

    def __init__(self, metadata, **_):
        super().__init__()
        self.m = torch.tensor(metadata["train_mean"], dtype=torch.float64)
        self.s = torch.tensor(metadata["train_std"], dtype=torch.float64)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        phys = x[:, -1].double() * self.s + self.m
        c, s = phys[:, 0] - 3, (phys[:, 1] + 1) / 2
        nc, ns = c * math.cos(OMEGA) - s * math.sin(OMEGA), s * math.cos(OMEGA) + c * math.sin(OMEGA)
        nxt = torch.stack([nc + 3, 2 * ns - 1], dim=1)
        return (((nxt - self.m) / self.s).float() + 0 * self.dummy)[:, None]


class Plugin:
    @hookimpl
    def dpbench_register_datasets(self, register):
        register(DatasetSpec(name="rotation", kind="forecast", description="exact rotation", citation="test",
                             generate=rotation, defaults={"length": 600}, param_docs={"length": "samples"},
                             metadata={"dt": 1.0, "lyapunov_exponent": 1.0}))

    @hookimpl
    def dpbench_register_models(self, register):
        register(ModelSpec(name="oracle", family="feedforward", description="exact", citation="test",
                           factory=RotationOracle, tasks=("forecast",), uses_metadata=True))


@pytest.fixture(scope="module")
def reg():
    return load_registry(disable_third_party=True, extra_plugins=[("test", Plugin())])


def trial(model, dataset, dparams=None, seed=0, steps=20, **train):
    return Trial(model, {}, dataset, dparams or {}, seed, "cpu",
                 TrainConfig(steps=steps, batch_size=16, eval_every=10, param_budget=1500, **train),
                 EvalConfig(rollout_steps=100, rollout_starts=3, timing_repeats=2,
                            vpt_cap_lyapunov=1, long_lyapunov_times=5, long_steps=50))


def test_closed_loop_rollout_of_an_exact_model_never_leaves_the_truth(reg):
    result = execute(trial("oracle", "rotation", {"window": 5, "length": 1000}), reg)
    m = result.metrics
    assert m["nrmse_1step"] < 1e-5 and m["nrmse_rollout"] < 1e-5
    # no error ever crosses ε, so VPT is the whole rollout: 100 steps · dt 1 · λ 1
    assert m["vpt_lyapunov"] == pytest.approx(100.0)
    assert m["rollout_steps"] == 100


def test_persistence_forecast_is_caught_by_vpt(reg):
    """A model that repeats its input has a finite VPT well below the rollout length."""
    result = execute(trial("fnn", "rotation", {"window": 5, "length": 1000}, steps=1, lr=1e-9), reg)
    assert result.metrics["vpt_lyapunov"] < 100


def test_budget_search_hits_the_budget(reg):
    task = prepare(reg.dataset("lorenz"), {"length": 400, "window": 8}, 0)
    for budget in (800, 5000, 20000):
        built = build_at_budget(reg.model("lstm"), task, {}, budget, 0.1)
        assert built.budget_ok and abs(built.param_count - budget) <= 0.1 * budget


def test_same_seed_same_numbers_on_cpu(reg):
    timing = {"train_seq_per_s", "infer_seq_per_s", "peak_memory_mb", "wall_time_s", "train_time_s"}
    for model, dataset, params in (("lstm", "lorenz", {"length": 500, "window": 8}),
                                   ("gru", "copy", {"lag": 3, "symbols": 2, "n_train": 32, "n_val": 8, "n_test": 8})):
        a = execute(trial(model, dataset, params, seed=3), reg).metrics
        b = execute(trial(model, dataset, params, seed=3), reg).metrics
        c = execute(trial(model, dataset, params, seed=4), reg).metrics
        keep = sorted(set(a) - timing)
        assert [a[k] for k in keep] == [b[k] for k in keep]
        assert [a[k] for k in keep] != [c[k] for k in keep]


SUITE = {
    "name": "t", "seeds": 2,
    "train": {"steps": 10, "batch_size": 8, "eval_every": 5, "param_budget": 800},
    "eval": {"rollout_steps": 20, "rollout_starts": 2, "timing_repeats": 2, "vpt_cap_lyapunov": 1, "long_lyapunov_times": 5, "long_steps": 50},
    "block": [
        {"name": "f", "models": ["rnn"], "datasets": ["lorenz:length=300,window=8"]},
        {"name": "r", "models": ["gru"], "datasets": ["copy:lag=[2,4],symbols=2,n_train=16,n_val=8,n_test=8"]},
    ],
}


def test_run_writes_tidy_csv_and_json_with_environment(reg, tmp_path):
    suite = parse_suite(SUITE, "test")
    run_dir, writer, _ = run_suite(suite, reg, out=str(tmp_path / "run"), quiet=True)
    rows = list(csv.DictReader(open(run_dir / "results.csv")))
    assert list(rows[0]) == CSV_COLUMNS
    trial_ids = {r["trial_id"] for r in rows if r["trial_id"]}
    assert len(trial_ids) == 6  # 1 forecast x 2 seeds + 2 lags x 2 seeds
    metrics = {r["metric"] for r in rows}
    assert {"nrmse_1step", "vpt_lyapunov", "accuracy", "cross_entropy", "train_seq_per_s",
            "infer_seq_per_s", "peak_memory_mb", "param_count", "wall_time_s", "max_lag_at_90"} <= metrics
    doc = load_results(run_dir)
    env = doc["environment"]
    assert {"dpbench_version", "git_sha", "git_dirty", "python", "torch", "cpu", "torch_threads"} <= set(env)
    assert doc["config"]["suite"]["blocks"][1]["datasets"] == SUITE["block"][1]["datasets"]
    assert all(len(t["samples"]["train_seq_per_s"]) >= 1 for t in doc["trials"])
    derived = [d for d in doc["derived"] if d["metric"] == "max_lag_at_90"]
    assert derived and derived[0]["dataset_params"].startswith("lag=*") and derived[0]["lags"] == [2.0, 4.0]
    assert len((run_dir / "trials.jsonl").read_text().splitlines()) == 6
    json.loads((run_dir / "config.json").read_text())


def test_blocks_with_the_same_dataset_are_separate_comparisons():
    from dpbench.metrics import derived_metrics
    from dpbench.report.summary import summary_rows
    from dpbench.results import TrialResult

    def t(block, lag, acc, seed=0):
        return TrialResult(f"{block}{lag}{seed}", "lstm", {}, "copy", {"lag": lag}, seed, "cpu", block=block,
                           metrics={"accuracy": acc, "cross_entropy": 1.0})

    trials = [t("a", 5, 1.0), t("a", 10, 0.95), t("b", 5, 0.2), t("b", 10, 0.1)]
    derived = {d["block"]: d["value"] for d in derived_metrics(trials, load_registry())}
    assert derived == {"a": 10.0, "b": 0.0}  # mixing the blocks would give 0.0 for both
    _, rows = summary_rows(trials)["recall"]
    assert len(rows) == 4 and all(r[3] == "1" for r in rows)

"""Per-model tuning: the chosen values, the sealed test split, resume after SIGKILL, bad input."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpbench.data import TestSplitSealed, prepare
from dpbench.harness import runner as R
from dpbench.harness import trial as trial_module
from dpbench.harness.suite import parse_suite, scale_budget
from dpbench.params import UsageError

ROOT = Path(__file__).resolve().parents[1]
TINY = "henon:length=400"


@pytest.fixture(autouse=True)
def _no_calibration(monkeypatch):
    """The machine-speed calibration is irrelevant here and slow on a loaded machine."""
    monkeypatch.setattr(R, "calibrate", lambda: {"samples": [1.0], "median": 1.0})


def _suite(space: dict, budget: int = 4, steps: int = 40, models=("fnn",), extra_blocks=(), **train):
    return parse_suite({
        "seeds": 2,
        "train": {"steps": steps, "eval_every": 10, "param_budget": 300, "batch_size": 16, **train},
        "eval": {"rollout_steps": 10, "rollout_starts": 2, "timing_repeats": 1},
        "block": [{"name": "tuned", "models": list(models), "datasets": [TINY],
                   "tune": {"budget": budget, "space": space, "pruner": "none"}}, *extra_blocks],
    }, "test")


def _run(suite, registry, out: Path):
    _, writer, _ = R.run_suite(suite, registry, out=str(out), quiet=True)
    return writer.trials


def _study_trials(run_dir: Path):
    import optuna

    out = {}
    for db in sorted((run_dir / "tuning").glob("*.db")):
        url = f"sqlite:///{db}"
        for name in optuna.study.get_all_study_names(url):
            out[name] = optuna.load_study(study_name=name, storage=url).get_trials()
    return out


def test_tuning_picks_the_lr_that_is_clearly_best_on_validation(registry, tmp_path):
    """lr 1e-6 cannot move a fresh network in 40 steps; 1e-2 can. Both get tried, the
    study's choice is the one with the lower validation loss, and every seed's final trial
    runs on it (recorded in results.json and results.csv)."""
    trials = _run(_suite({"lr": {"choices": [1e-6, 1e-2]}}, budget=6), registry, tmp_path)
    studies = _study_trials(tmp_path)
    assert len(studies) == 1
    (tried,) = studies.values()
    by_lr = {}
    for t in tried:
        by_lr.setdefault(t.params["lr"], []).append(t.value)
    assert set(by_lr) == {1e-6, 1e-2}
    assert min(by_lr[1e-2]) < 0.8 * min(by_lr[1e-6])
    assert [t.status for t in trials] == ["ok", "ok"]
    assert all(t.info["tuned"] == {"lr": 1e-2} and t.metrics["tuned_lr"] == 1e-2 for t in trials)
    assert all(t.metrics["tuning_trials"] == 6 and t.metrics["tuning_wall_s"] > 0 for t in trials)
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {float(r["value"]) for r in rows if r["metric"] == "tuned_lr"} == {1e-2}
    doc = json.loads((tmp_path / "results.json").read_text())
    assert {t["seed"] for t in doc["trials"]} == {0, 1}


def test_a_model_hyper_parameter_is_tuned_only_for_models_that_have_it(registry, tmp_path):
    trials = _run(_suite({"lr": {"low": 1e-3, "high": 1e-2, "log": True}, "delays": {"low": 1, "high": 3}},
                         budget=2, models=("fnn", "rnn")), registry, tmp_path)
    tuned = {t.model: set(t.info["tuned"]) for t in trials}
    assert tuned == {"fnn": {"lr", "delays"}, "rnn": {"lr"}}
    fnn = next(t for t in trials if t.model == "fnn")
    assert fnn.info["hparams"]["delays"] == fnn.info["tuned"]["delays"]


def test_a_forced_rerun_with_another_space_tunes_afresh(registry, tmp_path):
    """``--force`` over a run directory, or a changed tuning setup, must not reuse the old
    studies: their trials were drawn from another space, and a study already at its budget
    would hand its old choice to the finals without a single new trial."""
    first = _run(_suite({"lr": {"choices": [1e-6, 1e-2]}}, budget=2), registry, tmp_path)
    assert {t.info["tuned"]["lr"] for t in first} <= {1e-6, 1e-2}
    _, writer, _ = R.run_suite(_suite({"lr": {"choices": [3e-3]}}, budget=2), registry, out=str(tmp_path),
                               force=True, quiet=True)
    (tried,) = _study_trials(tmp_path).values()
    assert [t.params["lr"] for t in tried] == [3e-3, 3e-3]
    assert {t.info["tuned"]["lr"] for t in writer.trials} == {3e-3}


def test_the_study_name_changes_with_the_tuning_setup(registry):
    from dataclasses import replace

    from dpbench.harness.suite import expand_trials
    from dpbench.harness.tuning import study_name

    (t, *_), _ = expand_trials(_suite({"lr": {"choices": [1e-2]}}), registry, False)
    base = study_name(t, ([("lr", {"choices": [1e-2]})], "none", 0, t.train))
    assert base == study_name(t, ([("lr", {"choices": [1e-2]})], "none", 0, t.train))
    assert base != study_name(t, ([("lr", {"choices": [3e-3]})], "none", 0, t.train))
    assert base != study_name(t, ([("lr", {"choices": [1e-2]})], "median", 0, t.train))
    assert base != study_name(t, ([("lr", {"choices": [1e-2]})], "none", 0, replace(t.train, patience=3)))


def test_the_sealed_test_split_raises_on_every_read(registry):
    task = prepare(registry.dataset("henon"), {"length": 400}, 0)
    n_test = len(task.test)
    task.seal_test()
    for read in (lambda: task.test.x, lambda: task.test.y, lambda: len(task.test), lambda: task.test_series[0]):
        with pytest.raises(TestSplitSealed):
            read()
    task.train.x, task.val.x  # noqa: B018 - train and val stay readable
    task.unseal_test()
    assert len(task.test) == n_test


def test_tuning_never_reads_the_test_split_but_the_final_fit_does(registry, tmp_path, monkeypatch):
    """Every TaskData a tuning trial gets is sealed for the whole trial (the trials complete,
    so nothing read it); the final trials get theirs unsealed."""
    seen: list[tuple[bool, object]] = []
    real_prepare, real_train = trial_module.prepare, trial_module.train

    def spy_train(model, task, cfg, *args, **kwargs):
        seen.append((task.test_sealed, task))
        return real_train(model, task, cfg, *args, **kwargs)

    monkeypatch.setattr(trial_module, "train", spy_train)
    trials = _run(_suite({"lr": {"low": 1e-3, "high": 1e-2}}, budget=3), registry, tmp_path)
    assert [s for s, _ in seen] == [True] * 3 + [False] * 2
    assert all(t.status == "ok" for t in trials)
    assert all(t.state.name == "COMPLETE" for ts in _study_trials(tmp_path).values() for t in ts)
    assert real_prepare is trial_module.prepare


def test_a_tuning_trial_that_reads_the_test_split_fails(registry, tmp_path, monkeypatch):
    """The control: code that did read the test split during tuning would be caught."""
    real_train = trial_module.train

    def peeking_train(model, task, cfg, *args, **kwargs):
        task.test.x  # noqa: B018
        return real_train(model, task, cfg, *args, **kwargs)

    monkeypatch.setattr(trial_module, "train", peeking_train)
    trials = _run(_suite({"lr": {"low": 1e-3, "high": 1e-2}}, budget=2), registry, tmp_path)
    assert {t.status for t in trials} == {"failed"}  # no tuning trial completed
    assert all("TestSplitSealed" in t.error for t in trials)
    (tried,) = _study_trials(tmp_path).values()
    assert all("TestSplitSealed" in t.user_attrs["error"] for t in tried)


def test_a_study_whose_every_trial_diverged_is_recorded_and_the_run_goes_on(registry, tmp_path):
    explode = {"lr": {"low": 1e4, "high": 1e5, "log": True}}
    plain = {"name": "plain", "models": ["fnn:layers=1"], "datasets": [TINY]}
    trials = _run(_suite(explode, budget=2, optimizer="sgd", clip=0.0, extra_blocks=[plain]), registry, tmp_path)
    by_block = {}
    for t in trials:
        by_block.setdefault(t.block, []).append(t)
    assert [t.status for t in by_block["plain"]] == ["ok", "ok"]
    bad = by_block["tuned"]
    assert [t.status for t in bad] == ["diverged", "diverged"]
    assert len(bad[0].info["tried"]) == 2 and all("lr=" in v and "diverged" in v for v in bad[0].info["tried"])
    assert "lr=" in bad[0].error


def test_budget_scale_multiplies_step_and_tuning_budgets():
    suite = _suite({"lr": {"low": 1e-3, "high": 1e-2}}, budget=4, steps=40)
    scaled = scale_budget(suite, 5)
    assert scaled.blocks[0].train.steps == 200 and scaled.blocks[0].tune.budget == 20
    with pytest.raises(UsageError, match="budget-scale"):
        scale_budget(suite, 0)


@pytest.mark.parametrize("space, needle", [
    ({"lr": {"low": 1e-2, "high": 1e-2}}, "empty range"),
    ({"lr": {"low": 0.0, "high": 1e-2, "log": True}}, "log range needs low > 0"),
    ({"lr": {"low": 1e-3}}, "needs numeric low and high"),
    ({"lr": [1e-3, 1e-2]}, "valid form"),
    ({"lr": {"choices": []}}, "non-empty list"),
])
def test_a_bad_range_names_the_value_and_the_valid_form(space, needle):
    with pytest.raises(UsageError, match=needle) as info:
        _suite(space)
    assert "lr=" in str(info.value) and "\n" not in str(info.value)


def test_a_budget_below_one_is_refused():
    with pytest.raises(UsageError, match=r"budget=0 must be an integer >= 1"):
        _suite({"lr": {"low": 1e-3, "high": 1e-2}}, budget=0)


def _cli(*args, timeout=300, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dpbench.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


SUITE_TOML = """
name = "t"
seeds = 1
[train]
steps = {steps}
eval_every = 10
param_budget = 300
[eval]
rollout_steps = 10
rollout_starts = 2
timing_repeats = 1
[[block]]
name = "b"
models = ["{model}"]
datasets = ["henon:length=400"]
[block.tune]
budget = {budget}
pruner = "none"
[block.tune.space]
{space}
"""


@pytest.mark.parametrize("space, needle", [
    ('nonsense = {low=1, high=2}', "unknown key 'nonsense'"),
    ('lr = {low=0.1, high=0.01}', "empty range"),
    ('lr = {low=-1.0, high=0.01, log=true}', "log range needs low > 0"),
])
def test_bad_search_spaces_exit_2_before_anything_runs(tmp_path, space, needle, capsys):
    from dpbench.cli import main

    path = tmp_path / "s.toml"
    path.write_text(SUITE_TOML.format(steps=20, model="fnn", budget=2, space=space))
    out = tmp_path / "run"
    assert main(["run", "--suite", str(path), "--out", str(out), "--quiet"]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0]
    assert not (out / "tuning").exists() and not (out / "trials.jsonl").exists()


def test_budget_scale_zero_exits_2(capsys):
    from dpbench.cli import main

    assert main(["run", "--suite", "smoke", "--budget-scale", "0"]) == 2
    assert "budget-scale" in capsys.readouterr().err


def _completed(run_dir: Path) -> dict[int, tuple[dict, float]]:
    """Completed Optuna trials of the run's study, read from its SQLite file."""
    import optuna

    dbs = list((run_dir / "tuning").glob("*.db")) if (run_dir / "tuning").is_dir() else []
    url = f"sqlite:///{dbs[0]}"
    (name,) = optuna.study.get_all_study_names(url)
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    return {t.number: (t.params, t.value) for t in trials if t.state.name == "COMPLETE"}


def _n_completed(run_dir: Path) -> int:
    """The number of COMPLETE trials in the run's study, read-only straight from SQLite (no
    Optuna storage, no write lock, while the run is writing)."""
    import sqlite3

    dbs = list((run_dir / "tuning").glob("*.db")) if (run_dir / "tuning").is_dir() else []
    if not dbs:
        return 0
    try:
        with sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:  # tables not created yet, or locked for a moment
        return 0


@pytest.mark.slow
def test_sigkill_during_a_study_then_resume_keeps_every_completed_trial(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE_TOML.format(steps=400, model="fnn", budget=6,
                                      space="lr = {low=1e-3, high=3e-2, log=true}"))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dpbench.cli", "run", "--suite", str(path), "--out", str(out),
                             "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "err", "w"))
    try:
        deadline = time.time() + 600
        while _n_completed(out) < 2:  # the state the code reports, not a timing guess
            assert proc.poll() is None, (tmp_path / "err").read_text()[-2000:]
            assert time.time() < deadline, "no two completed tuning trials within 600 s"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _completed(out)
    assert 2 <= len(before) < 6
    res = _cli("run", "--resume", str(out), "--quiet", timeout=300)
    assert res.returncode == 0, res.stderr
    after = _completed(out)
    assert all(after[n] == before[n] for n in before)  # nothing completed was lost or redone
    import optuna

    (db,) = (out / "tuning").glob("*.db")
    url = f"sqlite:///{db}"
    (name,) = optuna.study.get_all_study_names(url)
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    counted = [t for t in trials if not t.user_attrs.get("interrupted")]
    assert len(counted) == 6 and all(t.state.name != "RUNNING" for t in trials)
    doc = json.loads((out / "results.json").read_text())
    assert [t["status"] for t in doc["trials"]] == ["ok"]
    best = min(after.values(), key=lambda pv: pv[1])[0]
    assert doc["trials"][0]["info"]["tuned"] == best

"""Reliability: failures stay inside their trial, runs survive SIGKILL and Ctrl-C and resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from dpbench import hookimpl
from dpbench.cli import main
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import parse_suite
from dpbench.plugins import load_registry, set_registry
from dpbench.results import TrialResult, read_trials
from dpbench.specs import ModelSpec

TIMING = {"train_seq_per_s", "infer_seq_per_s", "peak_memory_mb", "wall_time_s", "train_time_s"}


class Raiser(nn.Module):
    def __init__(self, **_):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        if self.training:
            raise RuntimeError("boom in forward")
        return x[:, -1:, :1] * self.w


class NaNModel(Raiser):
    def forward(self, x):
        return torch.full((x.shape[0], 1, 3), float("nan")) + self.w


class Sleeper(Raiser):
    def forward(self, x):
        if self.training:
            time.sleep(30)
        return x[:, -1:, :] * self.w


class WrongShape(Raiser):
    def forward(self, x):
        return x


class Plugin:
    @hookimpl
    def dpbench_register_models(self, register):
        for name, cls in (("raiser", Raiser), ("nan-model", NaNModel), ("sleeper", Sleeper), ("wrong-shape", WrongShape)):
            register(ModelSpec(name=name, family="feedforward", description=name, citation="test",
                               factory=cls, tasks=("forecast",)))


@pytest.fixture
def reg():
    registry = load_registry(disable_third_party=True, extra_plugins=[("badplug", Plugin())])
    set_registry(registry)
    yield registry
    set_registry(None)


def _suite(models, datasets="lorenz:length=300,window=8", seeds=1):
    return parse_suite({"seeds": seeds, "train": {"steps": 6, "batch_size": 8, "eval_every": 3, "param_budget": 500},
                        "eval": {"rollout_steps": 10, "rollout_starts": 2, "timing_repeats": 1, "vpt_cap_lyapunov": 1, "long_lyapunov_times": 5, "long_steps": 50},
                        "block": [{"models": models, "datasets": [datasets]}]}, "test")


def test_one_failing_diverging_and_timing_out_trial_do_not_stop_the_run(reg, tmp_path):
    suite = _suite(["raiser", "nan-model", "sleeper", "wrong-shape", "rnn"])
    _, writer, _ = run_suite(suite, reg, out=str(tmp_path / "r"), timeout=8.0, quiet=True)
    by_model = {t.model: t for t in writer.trials}
    assert by_model["raiser"].status == "failed" and "boom in forward" in by_model["raiser"].error
    assert by_model["nan-model"].status == "diverged" and "nan" in by_model["nan-model"].error.lower()
    assert by_model["sleeper"].status == "timeout"
    wrong = by_model["wrong-shape"]
    assert wrong.status == "failed" and "plugin 'badplug'" in wrong.error and "model contract" in wrong.error
    assert by_model["rnn"].status == "ok" and by_model["rnn"].metrics["nrmse_1step"] > 0
    statuses = {t.status for t in read_trials(tmp_path / "r")}
    assert statuses == {"failed", "diverged", "timeout", "ok"}


def test_exit_code_is_1_on_failures_unless_allowed(reg, tmp_path, capsys):
    args = ["run", "--models", "raiser,rnn", "--datasets", "lorenz:length=300,window=8", "--steps", "6", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 1
    out = capsys.readouterr().out
    assert "trial(s) did not finish ok" in out and "failed: raiser on lorenz" in out and "boom in forward" in out
    assert main([*args, "--out", str(tmp_path / "b"), "--allow-failures"]) == 0


SUITE_TOML = """
seeds = 3
[train]
steps = 40
batch_size = 8
eval_every = 20
param_budget = 600
[eval]
rollout_steps = 10
vpt_cap_lyapunov = 1
long_lyapunov_times = 5
long_steps = 50
rollout_starts = 2
timing_repeats = 1
[[block]]
models = ["rnn", "gru"]
datasets = ["lorenz:length=400,window=8"]
[[block]]
name = "gated"
models = ["gate"]
datasets = ["lorenz:length=400,window=8"]
"""

# The process tests run dpbench through this driver, which adds a "gate" model: it trains
# like a tiny linear model but, while the file named by $DPBENCH_TEST_GATE is missing, it
# waits inside its first training step. A run whose gate is closed therefore cannot finish,
# so a signal sent once the earlier trials are on disk always lands mid-run, however slow or
# loaded the machine is (no timing assumption).
DRIVER = """
import os, signal, sys, time
# a shell that starts background jobs hands them SIGINT ignored, and Python then keeps it
# ignored: restore Ctrl-C, which the interrupt tests send
signal.signal(signal.SIGINT, signal.default_int_handler)
import torch
from torch import nn
from dpbench import hookimpl
from dpbench.cli import main
from dpbench.plugins import load_registry, set_registry
from dpbench.specs import ModelSpec

class Gate(nn.Module):
    def __init__(self, input_size, input_steps, output_size, output_steps, task, hidden=4):
        super().__init__()
        self.lin = nn.Linear(input_size, output_size * output_steps)
        self.shape = (output_steps, output_size)

    def forward(self, x):
        while self.training and not os.path.exists(os.environ["DPBENCH_TEST_GATE"]):
            time.sleep(0.02)
        return self.lin(x[:, -1]).view(x.shape[0], *self.shape)

class Plugin:
    @hookimpl
    def dpbench_register_models(self, register):
        register(ModelSpec(name="gate", family="feedforward", description="waits for a file",
                           citation="test", factory=Gate, width="hidden", defaults={"hidden": 4},
                           tasks=("forecast",)))

set_registry(load_registry(disable_third_party=True, extra_plugins=[("gateplug", Plugin())]))
sys.exit(main(sys.argv[1:]))
"""


def _records(run_dir):
    return sorted(
        (t.trial_id, t.status, tuple(sorted((k, v) for k, v in t.metrics.items() if k not in TIMING)))
        for t in read_trials(run_dir)
    )


@pytest.fixture
def driver(tmp_path, monkeypatch):
    """``(command list builder, gate file)``: the gate starts closed."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    gate = tmp_path / "gate-open"
    monkeypatch.setenv("DPBENCH_TEST_GATE", str(gate))
    return (lambda *args: [sys.executable, str(script), *args]), gate


def _wait_for_records(proc, jsonl, count):
    """Block until ``jsonl`` holds ``count`` records (the run itself reports its progress)."""
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if jsonl.exists() and len([ln for ln in jsonl.read_text().splitlines() if ln.endswith("}")]) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"run ended (rc={proc.poll()}) or stalled before {count} trials were written")


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, driver):
    cli, gate = driver
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE_TOML)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli("run", "--suite", str(suite), "--out", str(killed), "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_records(proc, killed / "trials.jsonl", 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _records(killed)
    assert 2 <= len(before) <= 6, "the gate keeps its 3 trials from finishing"
    with open(killed / "trials.jsonl", "a") as fh:  # a torn record, as a crash mid-write would leave
        fh.write('{"trial_id": "abc", "model": "rn')
    gate.touch()
    resumed = subprocess.run(cli("run", "--resume", str(killed), "--quiet"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    after = _records(killed)
    assert set(before) <= set(after), "finished trials are kept unchanged"
    full = subprocess.run(cli("run", "--suite", str(suite), "--out", str(tmp_path / "full"), "--quiet"),
                          capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    assert after == _records(tmp_path / "full")
    doc = json.loads((killed / "results.json").read_text())
    assert len(doc["trials"]) == 9


def test_ctrl_c_saves_finished_trials_and_says_how_to_resume(tmp_path, driver):
    cli, _ = driver
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE_TOML.replace("seeds = 3", "seeds = 1"))
    run_dir = tmp_path / "int"
    proc = subprocess.Popen(cli("run", "--suite", str(suite), "--out", str(run_dir)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_records(proc, run_dir / "trials.jsonl", 2)  # rnn and gru done; the gate holds the rest
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert f"dpbench run --resume {run_dir}" in err
    assert len(read_trials(run_dir)) == 2
    assert len(json.loads((run_dir / "results.json").read_text())["trials"]) == 2


def test_interrupt_between_fsync_and_memory_keeps_the_files_in_agreement(tmp_path):
    """A Ctrl-C that lands after a trial reached trials.jsonl but before the writer's list:
    reload() makes results.json list it too."""
    from dpbench.results import RunWriter

    writer = RunWriter(tmp_path, "r", {}, {})
    trial = TrialResult("t1", "lstm", {}, "lorenz", {}, 0, "cpu", "ok", None, metrics={"mse": 1.0})
    writer.append(trial)
    writer.trials.clear()            # as if the interrupt hit right after the fsync
    writer.reload()
    writer.write()
    assert [t["trial_id"] for t in json.loads((tmp_path / "results.json").read_text())["trials"]] == ["t1"]

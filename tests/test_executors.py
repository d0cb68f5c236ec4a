"""Executors: worker processes (``--jobs``) and Ray give the same records as the sequential
local executor (timings and memory aside), write the same files, and clean up on an early
exit; a plugin only the parent registered reaches the workers."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dpbench import hookimpl
from dpbench.harness.executors import LocalExecutor, make_executor
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import EvalConfig, TrainConfig, Trial, parse_suite
from dpbench.params import UsageError
from dpbench.plugins import load_registry
from dpbench.specs import ModelSpec

TIMING = {"train_seq_per_s", "infer_seq_per_s", "peak_memory_mb", "wall_time_s", "train_time_s"}


class Affine(nn.Module):
    """Test-only model: last input step through a linear map, repeated (no citation needed)."""

    def __init__(self, input_size, output_size, output_steps, width=4, **_):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_size, width), nn.Tanh(), nn.Linear(width, output_size))
        self.steps = output_steps

    def forward(self, x):
        return self.net(x[:, -1:]).expand(-1, self.steps, -1)


class ParentOnlyPlugin:
    """Registered only through ``extra_plugins`` in the parent: workers must still see it."""

    @hookimpl
    def dpbench_register_models(self, register):
        register(ModelSpec(name="affine-test", family="feedforward", description="test model",
                           citation="test", factory=Affine, defaults={"width": 4}, width="width",
                           tasks=("forecast",)))


SUITE = {
    "name": "exec", "seeds": 2,
    "train": {"steps": 6, "batch_size": 8, "eval_every": 3, "param_budget": 600},
    "eval": {"rollout_steps": 12, "rollout_starts": 2, "timing_repeats": 1, "vpt_cap_lyapunov": 1, "long_lyapunov_times": 5, "long_steps": 50},
    "block": [
        {"name": "f", "models": ["gru", "affine-test"], "datasets": ["lorenz:length=300,window=8"]},
        {"name": "r", "models": ["rnn"], "datasets": ["copy:lag=2,symbols=2,n_train=16,n_val=8,n_test=8"]},
    ],
}


@pytest.fixture(scope="module")
def reg():
    return load_registry(disable_third_party=True, extra_plugins=[("exec-test", ParentOnlyPlugin())])


def records(run_dir):
    """{trial_id: (status, error, metrics without timings)} from the run's trials.jsonl."""
    out = {}
    for line in (run_dir / "trials.jsonl").read_text().splitlines():
        t = json.loads(line)
        out[t["trial_id"]] = (t["status"], t["error"], {k: v for k, v in t["metrics"].items() if k not in TIMING})
    return out


def assert_same_records(a, b):
    assert set(a) == set(b) and len(a) == 6
    for tid in a:
        assert a[tid][:2] == b[tid][:2] == ("ok", None), (a[tid][:2], b[tid][:2])
        assert a[tid][2].keys() == b[tid][2].keys()
        for k, v in a[tid][2].items():
            assert b[tid][2][k] == pytest.approx(v, rel=1e-5, abs=1e-7), f"{tid} {k}: {v} vs {b[tid][2][k]}"


@pytest.fixture(scope="module")
def sequential(reg, tmp_path_factory):
    run_dir, _, _ = run_suite(parse_suite(SUITE, "t"), reg, out=str(tmp_path_factory.mktemp("seq")),
                              force=True, quiet=True, executor=LocalExecutor())
    return run_dir


def test_jobs_two_matches_a_sequential_run(reg, sequential, tmp_path):
    executor = make_executor("local", jobs=2)
    assert type(executor).__name__ == "ProcessExecutor"
    run_dir, writer, _ = run_suite(parse_suite(SUITE, "t"), reg, out=str(tmp_path / "p"),
                                   quiet=True, executor=executor)
    assert_same_records(records(sequential), records(run_dir))
    # the environment block says what the trials ran with, not the parent's thread count
    assert writer.environment["workers"] == 2
    assert writer.environment["torch_threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert json.loads((sequential / "results.json").read_text())["environment"]["workers"] == 1
    # the same files, and the forecast artifacts came back from the workers intact
    names = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
    assert names(sequential) == names(run_dir)
    for f in sorted((sequential / "forecasts").glob("*.npz")):
        with np.load(f) as a, np.load(run_dir / "forecasts" / f.name) as b:
            np.testing.assert_allclose(a["pred"], b["pred"], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(a["truth"], b["truth"])


def tiny_trials(n):
    cfg = TrainConfig(steps=60, batch_size=8, eval_every=100, param_budget=600)
    return [Trial("gru", {}, "lorenz", {"length": 300, "window": 8}, s, "cpu", cfg,
                  EvalConfig(rollout_steps=12, rollout_starts=2, timing_repeats=1,
                             vpt_cap_lyapunov=1, long_lyapunov_times=5, long_steps=50)) for s in range(n)]


def test_closing_the_process_executor_early_stops_its_workers(reg):
    executor = make_executor("process", jobs=1)  # one worker: the queued trials must be cancelled
    outcomes = executor.run(tiny_trials(3), reg, None, lambda t: None, lambda s, l: None)
    trial, result, _ = next(outcomes)
    assert result.status == "ok" and trial.seed == 0
    outcomes.close()  # what Ctrl-C in the runner does to the generator
    import multiprocessing

    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_executor_usage_errors(monkeypatch):
    with pytest.raises(UsageError, match="valid: local, process, ray"):
        make_executor("slurm")
    with pytest.raises(UsageError, match="--executor ray"):
        make_executor("local", address="ray://head:10001")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UsageError, match=r"pip install 'dpbench\[ray\]'"):
        make_executor("ray")


def test_a_suite_declares_its_workers_and_jobs_overrides_it(monkeypatch):
    from dpbench.harness import suite as suite_module
    from dpbench.harness.suite import load_suite, resolve_jobs, suite_from_dict

    base = "[[block]]\nmodels = ['fnn']\ndatasets = ['lorenz']\n"
    assert parse_suite(tomllib_loads(base), "t").jobs == 1  # custom suites stay in-process
    auto = parse_suite(tomllib_loads('jobs = "auto"\n' + base), "t")
    monkeypatch.setattr(suite_module, "usable_cores", lambda: 6)
    assert auto.jobs == 0 and resolve_jobs(None, auto) == 6 and resolve_jobs(3, auto) == 3
    assert resolve_jobs(None, parse_suite(tomllib_loads("jobs = 2\n" + base), "t")) == 2
    assert suite_from_dict(auto.to_dict()).jobs == 0  # --resume keeps it
    assert load_suite("default").jobs == load_suite("standard").jobs == 0
    for bad, shown in (('"many"', "'many'"), ("-1", "-1"), ("true", "True")):
        with pytest.raises(UsageError, match=f'jobs={shown} must be "auto" or a count >= 1'):
            parse_suite(tomllib_loads(f"jobs = {bad}\n" + base), "t")


def tomllib_loads(text: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def test_ray_run_matches_a_local_run(reg, sequential, tmp_path):
    ray = pytest.importorskip("ray", reason="ray not installed: pip install 'dpbench[ray]'")
    started = not ray.is_initialized()
    if started:
        # the workers import this module to unpickle the test plugin, as they would import
        # an installed plugin package
        here = str(Path(__file__).parent)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": here}})
    try:
        run_dir, _, _ = run_suite(parse_suite(SUITE, "t"), reg, out=str(tmp_path / "ray"),
                                  quiet=True, executor=make_executor("ray"))
        assert_same_records(records(sequential), records(run_dir))
        assert (run_dir / "results.csv").read_text().splitlines()[0] == \
            (sequential / "results.csv").read_text().splitlines()[0]
        # an early exit cancels the tasks still outstanding
        cancelled = []
        real_cancel = ray.cancel
        ray.cancel = lambda ref, **kw: (cancelled.append(ref), real_cancel(ref, **kw))
        try:
            outcomes = make_executor("ray").run(tiny_trials(4), reg, None, lambda t: None, lambda s, l: None)
            next(outcomes)
            outcomes.close()
        finally:
            ray.cancel = real_cancel
        assert len(cancelled) == 3
    finally:
        if started:
            ray.shutdown()

"""The ``process`` executor: CPU trials in N worker processes on this machine.

Workers are started with the ``spawn`` method (no forked torch/OpenMP state). Each loads
the registry with :func:`~dpbench.plugins.load_registry` (built-ins and installed
third-party plugins, as in the parent) and then receives the parent's specs by pickle, so
plugins the parent registered in-process (``extra_plugins``) are there too.
Each worker uses ``max(1, cpu_count // jobs)`` torch threads so N workers do not
oversubscribe the cores. A :class:`~dpbench.harness.suite.Trial` is plain data and
pickles; artifacts come back as numpy arrays and are turned into tensors again here.

CUDA trials never go to a worker: they run in the main process, one after another,
while the workers handle the CPU trials. Ctrl-C cancels the queued trials and
terminates the workers; finished trials are already written by the runner.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Iterator

import torch

from dpbench.harness.executors import Outcome, is_cuda, lost_trial, to_numpy, to_torch
from dpbench.harness.suite import Trial
from dpbench.harness.trial import run_trial
from dpbench.plugins import Registry, load_registry
from dpbench.results import TrialResult

_WORKER_REGISTRY: Registry | None = None


def _init_worker(specs_blob: bytes, threads: int, third_party: bool) -> None:
    """Worker start: ignore Ctrl-C (the parent shuts workers down), load the registry the
    usual way and put the parent's (picklable) specs over it."""
    global _WORKER_REGISTRY
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    registry = load_registry(disable_third_party=not third_party)
    for attr, table in pickle.loads(specs_blob).items():
        getattr(registry, attr).update(table)
    _WORKER_REGISTRY = registry


def _work(trial: Trial, timeout: float | None) -> tuple[TrialResult, dict[str, Any]]:
    """One trial in a worker (failure-isolated by :func:`run_trial`)."""
    assert _WORKER_REGISTRY is not None
    artifacts: dict[str, Any] = {}
    result = run_trial(trial, _WORKER_REGISTRY, timeout, None, artifacts)
    return result, to_numpy(artifacts)


def specs_blob(registry: Registry) -> bytes:
    """The parent's models, datasets and metrics that pickle (by reference: their plugin modules
    must be importable in the worker). The others, e.g. specs whose factory is a closure,
    come from the worker's own :func:`load_registry`."""
    def picklable(table: dict) -> dict:
        out = {}
        for name, spec in table.items():
            try:
                pickle.dumps(spec)
            except Exception:
                continue
            out[name] = spec
        return out
    return pickle.dumps({attr: picklable(getattr(registry, attr)) for attr in ("models", "datasets", "metrics")})


def worker_threads(jobs: int) -> int:
    """torch threads of each of ``jobs`` worker processes: the usable cores shared out, at least 1."""
    from dpbench.harness.suite import usable_cores

    return max(1, usable_cores() // max(jobs, 1))


class ProcessExecutor:
    """Runs CPU trials in ``jobs`` spawned worker processes; results in completion order."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, trials, registry, timeout, on_start, on_step) -> Iterator[Outcome]:
        cpu = [t for t in trials if not is_cuda(t)]
        gpu = [t for t in trials if is_cuda(t)]
        threads = worker_threads(self.jobs)
        third_party = any(not p.builtin for p in registry.plugins)  # as the parent loaded it
        pool = ProcessPoolExecutor(
            max_workers=min(self.jobs, max(len(cpu), 1)), mp_context=mp.get_context("spawn"),
            initializer=_init_worker, initargs=(specs_blob(registry), threads, third_party),
        ) if cpu else None
        pending: dict[Future, Trial] = {}
        try:
            if pool is not None:
                pending = {pool.submit(_work, t, timeout): t for t in cpu}
            for trial in gpu:  # the main process takes the CUDA trials meanwhile
                on_start(trial)
                artifacts: dict[str, Any] = {}
                yield trial, run_trial(trial, registry, timeout, on_step, artifacts), artifacts
                yield from self._drain(pending, on_start, block=False)
            yield from self._drain(pending, on_start, block=True)
        finally:
            if pool is not None:
                _shutdown(pool, pending)

    @staticmethod
    def _drain(pending: dict[Future, Trial], on_start, block: bool) -> Iterator[Outcome]:
        """Yield finished futures (all of them when ``block``, else those already done)."""
        while pending:
            done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
            if not done:
                return
            for future in done:
                trial = pending.pop(future)
                on_start(trial)
                yield trial, *_outcome(trial, future)


def _outcome(trial: Trial, future: Future) -> tuple[TrialResult, dict[str, Any]]:
    """The worker's result, or a ``failed`` result when the worker itself died."""
    try:
        result, artifacts = future.result()
        return result, to_torch(artifacts)
    except Exception as exc:  # e.g. BrokenProcessPool: a worker was killed (OOM killer)
        return lost_trial(trial, "worker process", exc)


def _shutdown(pool: ProcessPoolExecutor, pending: dict[Future, Trial]) -> None:
    """Cancel queued trials; on an early exit (Ctrl-C) terminate running workers too."""
    for future in pending:
        future.cancel()
    if pending:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)

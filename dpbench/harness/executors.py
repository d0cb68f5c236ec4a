"""Executors: where trials run. Each yields ``(trial, result, artifacts)`` as trials finish.

* ``local`` (default): in this process, one trial after another, with live progress.
  ``--jobs N`` with N > 1 selects the ``process`` executor.
* ``process`` (``--executor process --jobs N``, or ``--jobs N``): CPU trials in N worker
  processes on this machine (:mod:`dpbench.harness._pool`); CUDA trials run in the main
  process meanwhile. Workers get the parent's registry (third-party plugins included).
* ``ray`` (``--executor ray [--ray-address ADDR]``): each trial a Ray task
  (:mod:`dpbench.harness._ray`); needs ``pip install 'dpbench[ray]'``.

Whatever the executor, the runner writes each result the moment it is yielded, so the
run directory's files and schema are identical. Trials are fully seeded, so results are
identical to a sequential run apart from timings and memory figures.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

from dpbench.harness.suite import Trial
from dpbench.harness.trial import run_trial
from dpbench.params import UsageError
from dpbench.plugins import Registry
from dpbench.results import TrialResult

Outcome = tuple[Trial, TrialResult, dict[str, Any]]


class Executor(Protocol):
    """Runs trials and yields their outcomes in completion order."""

    def run(self, trials: list[Trial], registry: Registry, timeout: float | None,
            on_start: Callable[[Trial], None], on_step: Callable[[int, float, float], None]) -> Iterator[Outcome]:
        ...


class LocalExecutor:
    """Sequential, in-process: the reference executor."""

    def run(self, trials, registry, timeout, on_start, on_step) -> Iterator[Outcome]:
        for trial in trials:
            on_start(trial)
            artifacts: dict[str, Any] = {}
            result = run_trial(trial, registry, timeout, on_step, artifacts)
            yield trial, result, artifacts


def to_numpy(artifacts: dict[str, Any]) -> dict[str, Any]:
    """Artifacts with every tensor (also inside one level of dicts) as a numpy array, for
    sending between processes without torch's shared-memory machinery."""
    def conv(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.detach().cpu().numpy()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return {k: conv(v) for k, v in artifacts.items()}


def to_torch(artifacts: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`to_numpy` (what the runner's artifact writer expects)."""
    def conv(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return torch.from_numpy(v.copy())  # received arrays are read-only
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return {k: conv(v) for k, v in artifacts.items()}


def is_cuda(trial: Trial) -> bool:
    return trial.device.startswith("cuda")


def lost_trial(trial: Trial, where: str, exc: BaseException) -> tuple[TrialResult, dict[str, Any]]:
    """The outcome of a trial whose worker itself died (killed, node lost): ``failed``, or
    ``oom`` when the message says so; no artifacts."""
    lines = [ln.strip() for ln in f"{type(exc).__name__}: {exc}".splitlines() if ln.strip()]
    detail = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    message = f"{where} failed: {detail}"[:500]
    status = "oom" if "memory" in message.lower() else "failed"
    return trial.result(status, message), {}


def _local(jobs: int = 1, **_: Any) -> Executor:
    return _process(jobs=jobs) if jobs > 1 else LocalExecutor()


def _process(jobs: int = 1, **_: Any) -> Executor:
    from dpbench.harness._pool import ProcessExecutor

    return ProcessExecutor(max(jobs, 1))


def _ray(jobs: int = 1, address: str | None = None, **_: Any) -> Executor:
    from dpbench.harness._ray import RayExecutor

    return RayExecutor(address=address)


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": _local, "process": _process, "ray": _ray}


def make_executor(name: str = "local", jobs: int = 1, address: str | None = None) -> Executor:
    """The executor called ``name`` (``jobs`` and ``address`` configure parallel ones)."""
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}; valid: {', '.join(sorted(EXECUTORS))}")
    if address and name != "ray":
        raise UsageError("--ray-address needs --executor ray")
    return EXECUTORS[name](jobs=jobs, address=address)

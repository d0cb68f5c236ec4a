"""Executors: where trials run. Each yields ``(trial, result, artifacts)`` as trials finish.

* ``local`` (default): in this process, one trial after another, with live progress.

Other executors (worker processes with ``--jobs N``, Ray with ``--executor ray``) plug in
here with the same interface; results are written by the runner exactly the same way.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

from dpbench.harness.suite import Trial
from dpbench.harness.trial import run_trial
from dpbench.params import UsageError
from dpbench.plugins import Registry
from dpbench.results import TrialResult

Outcome = tuple[Trial, TrialResult, dict[str, Any]]


class Executor(Protocol):
    """Runs trials and yields their outcomes in completion order."""

    def run(self, trials: list[Trial], registry: Registry, timeout: float | None,
            on_start: Callable[[Trial], None], on_step: Callable[[int, float], None]) -> Iterator[Outcome]:
        ...


class LocalExecutor:
    """Sequential, in-process: the reference executor."""

    def run(self, trials, registry, timeout, on_start, on_step) -> Iterator[Outcome]:
        for trial in trials:
            on_start(trial)
            artifacts: dict[str, Any] = {}
            result = run_trial(trial, registry, timeout, on_step, artifacts)
            yield trial, result, artifacts


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": lambda **_: LocalExecutor()}


def make_executor(name: str = "local", jobs: int = 1, address: str | None = None) -> Executor:
    """The executor called ``name`` (``jobs`` and ``address`` configure parallel ones)."""
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}; valid: {', '.join(sorted(EXECUTORS))}")
    return EXECUTORS[name](jobs=jobs, address=address)

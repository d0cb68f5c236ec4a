"""The ``ray`` executor: each trial one Ray task, results streamed back as they finish.

Resources: a CUDA trial asks for ``num_gpus=1`` (Ray then sets ``CUDA_VISIBLE_DEVICES`` so
``"cuda"`` is the GPU it was given); every trial asks for ``num_cpus`` CPUs
(``$DPBENCH_RAY_CPUS``, default 1), and its torch uses that many threads. The registry is
shipped once with ``ray.put`` (cloudpickle), so plugins the driver loaded are the ones the
tasks use; the workers still need the plugins' packages installed to unpickle them.

``--ray-address ADDR`` joins a running cluster (``ray.init(address=ADDR)``); without it an
already initialised Ray is used, or a local one is started. Ctrl-C (or any early exit)
cancels the outstanding tasks with ``ray.cancel(force=True)``; finished trials are
already written by the runner.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from dpbench.harness.executors import Outcome, is_cuda, lost_trial, to_numpy, to_torch
from dpbench.harness.suite import Trial
from dpbench.params import UsageError
from dpbench.results import TrialResult

CPUS_ENV = "DPBENCH_RAY_CPUS"
INSTALL_HINT = "pip install 'dpbench[ray]'"


def import_ray():
    """The ``ray`` module, or a :class:`UsageError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray: {INSTALL_HINT}") from None
    return ray


def _ray_trial(trial: Trial, registry: Any, timeout: float | None, threads: int) -> tuple[TrialResult, dict]:
    """Body of the Ray task: one failure-isolated trial; artifacts as numpy arrays."""
    import torch

    from dpbench.harness.trial import run_trial

    torch.set_num_threads(max(1, threads))
    artifacts: dict[str, Any] = {}
    result = run_trial(trial, registry, timeout, None, artifacts)
    return result, to_numpy(artifacts)


def _cpus() -> float:
    raw = os.environ.get(CPUS_ENV, "1")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"${CPUS_ENV}={raw!r} is not a number") from None
    if value <= 0:
        raise UsageError(f"${CPUS_ENV}={raw!r} must be > 0")
    return value


class RayExecutor:
    """Submits every trial as a Ray task and yields outcomes in completion order."""

    def __init__(self, address: str | None = None, num_cpus: float | None = None):
        self.ray = import_ray()
        self.address = address
        self.num_cpus = _cpus() if num_cpus is None else num_cpus

    def _connect(self) -> None:
        ray = self.ray
        if self.address:
            if ray.is_initialized():
                ray.shutdown()
            try:
                ray.init(address=self.address)
            except Exception as exc:
                raise UsageError(f"cannot connect to Ray at {self.address!r}: {exc}") from None
        elif not ray.is_initialized():
            ray.init()

    def run(self, trials, registry, timeout, on_start, on_step) -> Iterator[Outcome]:
        ray = self.ray
        self._connect()
        remote = ray.remote(_ray_trial)
        reg_ref = ray.put(registry)
        threads = int(self.num_cpus)
        pending: dict[Any, Trial] = {}
        for t in trials:
            opts = {"num_cpus": self.num_cpus, "num_gpus": 1 if is_cuda(t) else 0, "max_retries": 0}
            pending[remote.options(**opts).remote(t, reg_ref, timeout, threads)] = t
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    trial = pending.pop(ref)
                    on_start(trial)
                    yield trial, *self._outcome(trial, ref)
        finally:
            for ref in pending:  # Ctrl-C or an early exit: cancel what is outstanding
                ray.cancel(ref, force=True)

    def _outcome(self, trial: Trial, ref: Any) -> tuple[TrialResult, dict[str, Any]]:
        try:
            result, artifacts = self.ray.get(ref)
            return result, to_torch(artifacts)
        except Exception as exc:  # the task itself died (worker crash, node lost)
            return lost_trial(trial, "ray task", exc)

"""Device-synchronised timers and the per-trial peak-memory measurement.

``peak_memory_mb`` (a trial's metric) is the memory one training step of the model needs:

* **CUDA**: ``torch.cuda.max_memory_allocated`` over the trial after
  ``reset_peak_memory_stats`` (parameters, data on the device, activations, gradients,
  optimiser state);
* **CPU**: one training step (forward, loss, backward, gradient clipping, optimiser step)
  of a copy of the freshly built model on one training batch, run under
  ``torch.profiler.profile(profile_memory=True)``. The profiler records every CPU
  allocation and free of that step; the peak of their running sum, plus the bytes of the
  model's parameters and buffers, is the figure. Memory allocated before the step (the
  process's libraries, the data set, earlier trials, the allocator's cache) does not count,
  so the number depends on the model and its batch alone, unlike the process's RSS.
"""
from __future__ import annotations

import copy
import math
import os
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from dpbench.data import TaskData
    from dpbench.harness.suite import TrainConfig


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@contextmanager
def timed(device: str, out: list[float]):
    """Append the wall time (s) of the block to ``out``, synchronising the device."""
    synchronize(device)
    start = time.perf_counter()
    yield
    synchronize(device)
    out.append(time.perf_counter() - start)


def reset_peak_memory(device: str) -> None:
    """Start a new CUDA peak-memory window (CPU: nothing to reset, see the module doc)."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def cuda_peak_memory_mb() -> float:
    """``torch.cuda.max_memory_allocated`` since :func:`reset_peak_memory`, in MiB."""
    return torch.cuda.max_memory_allocated() / 2**20


@contextmanager
def _silent_stderr():
    """Send file descriptor 2 to /dev/null: libtorch prints a line at every profiler start
    and stop that no log level turns off, and it would break the progress display."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def allocation_peak_bytes(run) -> int:
    """Peak of the running sum of CPU allocations (+) and frees (−) while ``run()`` runs,
    from the profiler's allocation events in time order (0 when nothing is allocated)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _silent_stderr():
        prof.start()
    try:
        run()
    finally:
        with _silent_stderr():
            prof.stop()
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    current = peak = 0
    for _, size in sorted(events):
        current += size
        peak = max(peak, current)
    return peak


def training_step_memory_mb(model: torch.nn.Module, task: TaskData, cfg: TrainConfig) -> float:
    """CPU peak memory (MiB) of one training step of ``model`` (module doc, "CPU").

    Runs on a deep copy with a fresh optimiser and torch's random state restored
    afterwards, so the trial's own training is unchanged.
    """
    from dpbench.harness.train import make_optimizer, task_loss

    loss_fn = task_loss(task)
    bs = min(cfg.batch_size, len(task.train))
    x, y = task.train.x[:bs].contiguous(), task.train.y[:bs].contiguous()
    with torch.random.fork_rng(devices=[]):
        probe = copy.deepcopy(model).cpu().train()
        opt = make_optimizer(cfg, probe.parameters())
        resident = sum(t.numel() * t.element_size() for t in (*probe.parameters(), *probe.buffers()))

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(probe(x), y).backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(probe.parameters(), cfg.clip)
            opt.step()

        try:
            peak = allocation_peak_bytes(step)
        except RuntimeError:  # e.g. the profiler already running in this thread
            return math.nan
    return (resident + peak) / 2**20

"""The fit protocol: models whose spec declares ``fit`` are fitted, not gradient-trained.

The harness calls ``spec.fit(model, train, val, seed=seed)`` once, in place of
:func:`dpbench.harness.train.train`, and then scores the model exactly like a trained one.
What it reports in the training slots: ``train_time_s`` = the fit's wall time,
``train_seq_per_s`` = training windows fitted per second (one sample), ``best_val_loss`` /
``final_train_loss`` = the task loss on the validation split / on at most
:data:`TRAIN_LOSS_WINDOWS` evenly spaced training windows after the fit. On CPU,
``peak_memory_mb`` is the analogue of a trained model's training-step figure
(:mod:`dpbench.harness.timing`): parameters and buffers plus the allocation peak of the fit
itself, recorded by the profiler while the fit runs (its overhead is inside the fit time).
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from dpbench.data import Split, TaskData
from dpbench.harness.timing import allocation_peak_bytes, synchronize
from dpbench.harness.train import TrainResult, split_loss, task_loss
from dpbench.specs import ModelSpec, owner, resolve

#: training windows scored for ``final_train_loss`` (a reservoir's forward costs T·N²)
TRAIN_LOSS_WINDOWS = 1024


def fit(spec: ModelSpec, model: nn.Module, task: TaskData, seed: int, device: str,
        eval_batch_size: int = 256) -> tuple[TrainResult, dict[str, Any], float]:
    """Fit ``model`` in place with ``spec.fit``; returns the training summary, what the fit
    chose (its return value, a dict) and the CPU peak memory in MiB (NaN on CUDA, where the
    trial's allocator peak is used)."""
    fit_fn = resolve(spec.fit, owner(spec))
    out: dict[str, Any] = {}

    def run() -> None:
        out["chosen"] = fit_fn(model, task.train, task.val, seed=seed)

    cpu = not device.startswith("cuda")
    synchronize(device)
    start = time.perf_counter()
    if cpu:
        peak = allocation_peak_bytes(run)
    else:
        run()
        peak = 0
    synchronize(device)
    seconds = time.perf_counter() - start
    chosen = out.get("chosen")
    resident = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    memory = (resident + peak) / 2**20 if cpu else math.nan
    if chosen is not None and not isinstance(chosen, dict):
        raise TypeError(f"{owner(spec)}: fit must return a dict or None, got {type(chosen).__name__}")
    model.eval()
    loss_fn = task_loss(task)
    val = split_loss(model, task.val, loss_fn, device, eval_batch_size)
    n = len(task.train)
    idx = torch.linspace(0, n - 1, min(n, TRAIN_LOSS_WINDOWS)).round().long()
    train = split_loss(model, Split(task.train.x[idx], task.train.y[idx]), loss_fn, device, eval_batch_size)
    model.eval()  # split_loss leaves the model in train mode
    rate = [len(task.train) / seconds] if seconds > 0 else []
    return TrainResult(0, 0, val, train, rate, seconds), dict(chosen or {}), memory

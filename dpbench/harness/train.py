"""The training loop: a fixed step budget, best-validation checkpoint, timed chunks.

Training throughput is measured on the real training steps: steps run in chunks of
``timing_chunk`` (fewer for short budgets, so that at least two chunks are timed) between device synchronisations; each chunk yields one sample of
sequences/s (the first chunk is warm-up and dropped). Validation runs between chunks,
outside the timed region.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dpbench.data import Split, TaskData
from dpbench.harness.suite import TrainConfig
from dpbench.harness.timing import synchronize


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class TrialTimeout(RuntimeError):
    """The trial ran past its time limit."""


@dataclass
class TrainResult:
    steps: int
    best_step: int
    best_val_loss: float
    final_train_loss: float
    train_seq_per_s: list[float] = field(default_factory=list)
    seconds: float = 0.0


def task_loss(task: TaskData) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss: mean squared error, or cross-entropy over all output steps."""
    if task.loss == "ce":
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return F.mse_loss


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
             "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    return kinds[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def split_loss(model: nn.Module, split: Split, loss_fn, device: str, batch_size: int) -> float:
    """Mean loss over a whole split (batched, eval mode)."""
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(split), batch_size):
        xb = split.x[i:i + batch_size].to(device)
        yb = split.y[i:i + batch_size].to(device)
        total += float(loss_fn(model(xb), yb)) * len(xb)
        n += len(xb)
    model.train()
    return total / max(n, 1)


def train(
    model: nn.Module, task: TaskData, cfg: TrainConfig, seed: int, device: str,
    on_progress: Callable[[int, float, float], None] | None = None, deadline: float | None = None,
    eval_batch_size: int = 256,
) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` steps and load its best-validation weights."""
    loss_fn = task_loss(task)
    opt = make_optimizer(cfg, model.parameters())
    gen = torch.Generator().manual_seed(seed)
    x, y = task.train.x.to(device), task.train.y.to(device)
    n, bs = len(x), min(cfg.batch_size, len(x))
    best_val, best_step = math.inf, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    samples: list[float] = []
    last_loss = math.nan
    start = time.perf_counter()
    model.train()
    step = 0
    chunk_size = max(1, min(cfg.timing_chunk, cfg.steps // 3))  # >= 2 timed chunks after warm-up
    while step < cfg.steps:
        chunk = min(chunk_size, cfg.steps - step)
        idx = [torch.randint(n, (bs,), generator=gen) for _ in range(chunk)]
        losses = []
        synchronize(device)
        t0 = time.perf_counter()
        for i in idx:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[i]), y[i])
            loss.backward()
            if cfg.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            losses.append(loss.detach())
        synchronize(device)
        elapsed = time.perf_counter() - t0
        if step > 0 and elapsed > 0:  # the first chunk is warm-up
            samples.append(chunk * bs / elapsed)
        step += chunk
        last_loss = float(torch.stack(losses).mean())
        if not math.isfinite(last_loss):
            raise Diverged(f"training loss became {last_loss} at step {step}")
        if deadline is not None and time.perf_counter() > deadline:
            raise TrialTimeout(f"trial exceeded its time limit at step {step}")
        if step % cfg.eval_every < chunk or step == cfg.steps:
            val = split_loss(model, task.val, loss_fn, device, eval_batch_size)
            if val < best_val:
                best_val, best_step = val, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_progress:
            on_progress(step, last_loss, best_val)
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(cfg.steps, best_step, best_val, last_loss, samples, time.perf_counter() - start)

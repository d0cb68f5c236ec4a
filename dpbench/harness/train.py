"""The training loop: a step cap, a learning-rate schedule, early stopping on the
validation loss, the best-validation checkpoint, a learning curve and timed chunks.

Schedule (``TrainConfig.schedule``): ``constant``; ``cosine`` — η_t = η·½(1 + cos(π·t/T))
over the step cap T (Loshchilov & Hutter 2017, SGDR); ``plateau`` — η halved when the
validation loss has not improved for ``max(1, patience // 2)`` validations (torch's
``ReduceLROnPlateau``). Any of them may start with a linear warm-up over ``warmup·T`` steps
(Goyal et al. 2017).

Early stopping (``patience`` > 0): training stops after ``patience`` validations in a row
without a relative improvement of at least ``min_delta``; the best-validation weights are
restored either way.

Convergence (:func:`converged`): a trial is *converged* when it stopped early, or when its
best validation loss improved by less than :data:`CONVERGED_TOL` (1 %, relative) over the
last :data:`CONVERGED_WINDOW` (20 %) of the steps it ran. A run whose loss was still
falling at the cap is unconverged, and the report marks it †.

Loss floor: a cross-entropy below :data:`CE_LOSS_FLOOR` (10⁻³ nats per step: every answer
predicted with probability > 0.999) counts as the floor itself, for early stopping and for
the convergence rule alike. Without it a model that recalls everything would never
converge: its loss keeps shrinking by more than 1 % per window as its confidence grows,
with no change in what it answers. Squared-error losses have no floor (a chaotic forecast
gains valid time from every decade of one-step error).

Training throughput is measured on the real training steps: steps run in chunks of
``timing_chunk`` (fewer for short budgets, so that at least two chunks are timed) between
device synchronisations; each chunk yields one sample of sequences/s (the first chunk is
warm-up and dropped). Validation runs between chunks, outside the timed region.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dpbench.data import Split, TaskData
from dpbench.harness.suite import TrainConfig
from dpbench.harness.timing import synchronize

#: the convergence rule's window (fraction of the steps run) and relative tolerance
CONVERGED_WINDOW = 0.2
CONVERGED_TOL = 0.01
#: cross-entropy (nats per step) that counts as solved (module docstring, "Loss floor")
CE_LOSS_FLOOR = 1e-3


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class TrialTimeout(RuntimeError):
    """The trial ran past its time limit."""


class Pruned(RuntimeError):
    """A tuning trial stopped by the study's pruner (its validation loss lagged the others)."""


@dataclass
class TrainResult:
    """What one training run did. ``curve_*`` are the learning curve, one entry per
    validation: the step, the mean training loss since the previous validation, the
    validation loss."""

    steps: int
    best_step: int
    best_val_loss: float
    final_train_loss: float
    train_seq_per_s: list[float] = field(default_factory=list)
    seconds: float = 0.0
    sequences_seen: int = 0
    stopped_early: bool = False
    converged: bool = False
    curve_step: list[float] = field(default_factory=list)
    curve_train_loss: list[float] = field(default_factory=list)
    curve_val_loss: list[float] = field(default_factory=list)


def converged(steps: Sequence[float], val_loss: Sequence[float], stopped_early: bool = False,
              window: float = CONVERGED_WINDOW, tol: float = CONVERGED_TOL, floor: float = 0.0) -> bool:
    """The convergence rule (module docstring): ``stopped_early``, or the best validation
    loss over the last ``window`` of the steps improved on the best before it by less than
    ``tol`` (relative), losses below ``floor`` counting as ``floor``. Fewer than two
    validations, or none before the window: False."""
    if stopped_early:
        return True
    pairs = [(s, max(v, floor)) for s, v in zip(steps, val_loss) if math.isfinite(v)]
    if len(pairs) < 2:
        return False
    cut = pairs[-1][0] * (1 - window)
    before = [v for s, v in pairs if s <= cut]
    if not before:
        return False
    ref, best = min(before), min(v for _, v in pairs)
    return ref - best <= tol * abs(ref)


def loss_floor(task: TaskData) -> float:
    """The loss below which training counts as done (module docstring): :data:`CE_LOSS_FLOOR`
    for cross-entropy tasks, 0 for squared error."""
    return CE_LOSS_FLOOR if task.loss == "ce" else 0.0


def task_loss(task: TaskData) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss: mean squared error, or cross-entropy over all output steps."""
    if task.loss == "ce":
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return F.mse_loss


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
             "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    return kinds[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Schedule:
    """The learning-rate schedule of ``cfg`` on ``opt``: :meth:`step` after every
    optimiser step, :meth:`validated` after every validation."""

    def __init__(self, cfg: TrainConfig, opt: torch.optim.Optimizer):
        self.warmup = int(round(cfg.warmup * cfg.steps))
        self.kind, self.step_count = cfg.schedule, 0
        total, warm = cfg.steps, self.warmup

        def factor(t: int) -> float:
            f = min(1.0, (t + 1) / warm) if warm else 1.0
            if cfg.schedule == "cosine":
                f *= 0.5 * (1 + math.cos(math.pi * min(t, total) / total))
            return f

        self.lambda_lr = torch.optim.lr_scheduler.LambdaLR(opt, factor) if (warm or self.kind == "cosine") else None
        self.plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=max(1, cfg.patience // 2), threshold=cfg.min_delta, threshold_mode="rel")
            if self.kind == "plateau" else None)

    def step(self) -> None:
        self.step_count += 1
        if self.lambda_lr is not None and (self.kind == "cosine" or self.step_count <= self.warmup):
            self.lambda_lr.step()

    def validated(self, val_loss: float) -> None:
        if self.plateau is not None and self.step_count >= self.warmup:
            self.plateau.step(val_loss)


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
    eval_batch_size: int = 256, on_eval: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place for at most ``cfg.steps`` steps (fewer when early stopping
    fires) and load its best-validation weights. ``on_eval(step, val_loss)`` is called after
    every validation (the tuner's pruner; it may raise to stop the trial)."""
    loss_fn, floor = task_loss(task), loss_floor(task)
    opt = make_optimizer(cfg, model.parameters())
    schedule = Schedule(cfg, opt)
    gen = torch.Generator().manual_seed(seed)
    x, y = task.train.x.to(device), task.train.y.to(device)
    n, bs = len(x), min(cfg.batch_size, len(x))
    best_val, best_step = math.inf, 0
    anchor, stale, stopped = math.inf, 0, False
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    samples: list[float] = []
    curve: tuple[list[float], list[float], list[float]] = ([], [], [])
    since_eval: list[torch.Tensor] = []
    last_loss = math.nan
    start = time.perf_counter()
    model.train()
    step = 0
    chunk_size = max(1, min(cfg.timing_chunk, cfg.steps // 3))  # >= 2 timed chunks after warm-up
    while step < cfg.steps and not stopped:
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
            schedule.step()
            losses.append(loss.detach())
        synchronize(device)
        elapsed = time.perf_counter() - t0
        if step > 0 and elapsed > 0:  # the first chunk is warm-up
            samples.append(chunk * bs / elapsed)
        step += chunk
        since_eval += losses
        last_loss = float(torch.stack(losses).mean())
        if not math.isfinite(last_loss):
            raise Diverged(f"training loss became {last_loss} at step {step}")
        if deadline is not None and time.perf_counter() > deadline:
            raise TrialTimeout(f"trial exceeded its time limit at step {step}")
        if step % cfg.eval_every < chunk or step == cfg.steps:
            val = split_loss(model, task.val, loss_fn, device, eval_batch_size)
            curve[0].append(float(step))
            curve[1].append(float(torch.stack(since_eval).mean()))
            curve[2].append(val)
            since_eval = []
            if val < best_val:
                best_val, best_step = val, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if max(val, floor) < anchor * (1 - cfg.min_delta) or not math.isfinite(anchor):
                anchor, stale = max(val, floor), 0
            else:
                stale += 1
            stopped = cfg.patience > 0 and stale >= cfg.patience
            schedule.validated(val)
            if on_eval:
                on_eval(step, val)
        if on_progress:
            on_progress(step, last_loss, best_val)
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(step, best_step, best_val, last_loss, samples, time.perf_counter() - start,
                       sequences_seen=step * bs, stopped_early=stopped,
                       converged=converged(curve[0], curve[2], stopped, floor=floor),
                       curve_step=curve[0], curve_train_loss=curve[1], curve_val_loss=curve[2])

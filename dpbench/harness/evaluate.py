"""Scoring a trained model on the test split: accuracy metrics, closed-loop rollouts,
inference throughput, diagnostics and gradient sensitivity."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dpbench import metrics as M
from dpbench.data import TaskData
from dpbench.harness.suite import EvalConfig
from dpbench.harness.timing import timed
from dpbench.rollout import closed_loop


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: str, batch_size: int) -> torch.Tensor:
    """Model outputs for ``x [n, T, D]`` in batches, on CPU."""
    outs = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def rollout(model: nn.Module, task: TaskData, steps: int, starts: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-loop forecasts from evenly spaced starts in the test series
    (:func:`dpbench.rollout.closed_loop`). Returns ``(pred, truth)``, each ``[S, steps, D_out]``."""
    window = int(task.train.x.shape[1])
    return closed_loop(model, task.test_series, window, task.target_index, steps, starts, device)


def forecast_metrics(model: nn.Module, task: TaskData, cfg: EvalConfig, device: str) -> tuple[dict, dict, dict]:
    """One-step NRMSE, rollout NRMSE and (when λ is known) VPT in Lyapunov times.

    Returns ``(metrics, samples, example)``; ``example`` holds the first rollout's
    ``pred`` and ``truth`` ``[steps, D_out]`` for forecast-vs-truth plots."""
    pred = predict(model, task.test.x, device, cfg.eval_batch_size)
    out = {"nrmse_1step": M.nrmse(pred[:, :1], task.test.y[:, :1])}
    if task.output_steps > 1:
        out["nrmse_horizon"] = M.nrmse(pred, task.test.y)
    samples: dict[str, list[float]] = {}
    roll, truth = rollout(model, task, cfg.rollout_steps, cfg.rollout_starts, device)
    out["nrmse_rollout"] = M.nrmse(roll, truth)
    out["rollout_steps"] = float(roll.shape[1])
    lyap, dt = task.lyapunov_exponent, task.dt
    if lyap and dt:
        # data are normalised by the train std, so σ_d = 1 in these coordinates
        err = M.normalised_error(roll.double(), truth.double(), torch.ones(truth.shape[-1], dtype=torch.float64))
        vpt = M.vpt_lyapunov_times(err, cfg.vpt_threshold, dt, lyap)
        out["vpt_lyapunov"] = float(vpt.mean())
        out["rollout_lyapunov_times"] = float(roll.shape[1] * dt * lyap)
        samples["vpt_lyapunov"] = vpt.tolist()
    free = task.metadata.get("free_run_steps")
    if free:
        out[f"nrmse{int(free)}"] = free_run_nrmse(model, task, int(free), FREE_RUN_STARTS, device)
    return out, samples, {"pred": roll[0], "truth": truth[0]}


#: starts of :func:`free_run_nrmse` (Jaeger & Haas 2004 average 100 independent runs)
FREE_RUN_STARTS = 50


def free_run_nrmse(model: nn.Module, task: TaskData, steps: int, starts: int, device: str) -> float:
    """NRMSE at the end of a free run: Jaeger & Haas 2004 (Science 304:78) NRMSE84 for
    ``steps = 84``. From ``starts`` evenly spaced test windows (teacher forcing over the
    window), the model runs closed-loop for ``steps`` steps; then
    ``sqrt(mean_s (ŷ_s(steps) − y_s(steps))² / σ²)`` with σ² the variance of the training
    series, which is 1 in dpbench's train-normalised units (Jaeger & Haas normalise by the
    variance of the original signal). Averaged over the predicted components."""
    window = int(task.train.x.shape[1])
    pred, truth = closed_loop(model, task.test_series, window, task.target_index, steps, starts, device)
    if pred.shape[1] < steps:
        raise ValueError(f"test series too short for a {steps}-step free run")
    err = (pred[:, -1].double() - truth[:, -1].double()) ** 2  # variance 1: train-normalised
    return float(err.mean().sqrt())


def recall_metrics(model: nn.Module, task: TaskData, cfg: EvalConfig, device: str) -> dict:
    """Accuracy, loss, and the task's trivial baseline.

    For regression recall tasks an answer counts as recalled when its absolute error is
    at most ``tolerance``: the dataset's ``metadata["tolerance"]``, else a tenth of the
    memoryless baseline's RMS error (0.1·sqrt(baseline MSE); 0.041 for adding)."""
    pred = predict(model, task.test.x, device, cfg.eval_batch_size)
    tol = task.metadata.get("tolerance")
    if tol is None and task.loss == "mse" and task.baseline:
        tol = 0.1 * float(task.baseline) ** 0.5
    out = M.recall_scores(pred, task.test.y, task.test.mask, task.loss, tol)
    if task.baseline is not None:
        out["baseline_" + ("cross_entropy" if task.loss == "ce" else "mse")] = float(task.baseline)
    return out


def inference_throughput(model: nn.Module, task: TaskData, batch_size: int, repeats: int, device: str) -> list[float]:
    """Sequences/s of ``repeats`` timed forward passes (after two warm-up passes)."""
    x = task.test.x[:batch_size]
    if len(x) < batch_size:
        x = x.repeat((batch_size + len(x) - 1) // len(x), 1, 1)[:batch_size]
    x = x.to(device)
    times: list[float] = []
    with torch.no_grad():
        for _ in range(2):
            model(x)
        for _ in range(repeats):
            with timed(device, times):
                model(x)
    return [len(x) / t for t in times if t > 0]


def collect_diagnostics(model: nn.Module, x: torch.Tensor, device: str, batch_size: int) -> dict[str, torch.Tensor]:
    """Run ``model(x, diagnostics=d)`` over ``x`` in batches; concatenate each key."""
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            d: dict[str, Any] = {}
            model(x[i:i + batch_size].to(device), diagnostics=d)
            for k, v in d.items():
                if isinstance(v, torch.Tensor):
                    parts.setdefault(k, []).append(v.detach().float().cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def gradient_sensitivity(model: nn.Module, task: TaskData, device: str, samples: int = 32) -> np.ndarray:
    """‖∂y_T/∂x_t‖ for t = 1..T (mean over ``samples`` test windows), y_T the last output
    step summed over its components: the seed's Fig. 6 made measurable. Shape ``[T]``."""
    x = task.test.x[:samples].to(device).clone().requires_grad_(True)
    was_training = model.training
    model.train()  # cuDNN RNNs only run backward in training mode; no dropout is used
    with torch.enable_grad():
        out = model(x)
        out[:, -1].sum().backward()
    model.train(was_training)
    return x.grad.norm(dim=-1).mean(dim=0).detach().cpu().numpy()

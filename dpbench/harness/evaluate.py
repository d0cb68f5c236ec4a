"""Scoring a trained model: the registered metrics (:func:`evaluate`) on the test split,
closed-loop rollouts on independent test trajectories, long autonomous rollouts with a
Benettin twin, inference throughput, diagnostics and gradient sensitivity."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from dpbench.data import TaskData
from dpbench.harness.suite import EvalConfig
from dpbench.harness.timing import timed
from dpbench.metrics._forecast import FREE_RUN_STARTS, free_run_nrmse  # noqa: F401  (re-exported)
from dpbench.plugins import Registry
from dpbench.rollout import TWIN_TRANSIENT, feed_back  # noqa: F401  (TWIN_TRANSIENT re-exported)
from dpbench.specs import MetricSpec, ModelSpec, owner, resolve


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: str, batch_size: int) -> torch.Tensor:
    """Model outputs for ``x [n, T, D]`` in batches, on CPU."""
    outs = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


class ContractError(RuntimeError):
    """A plugin's model or metrics broke the documented contract."""


@dataclass
class Rollouts:
    """Closed-loop forecasts ``pred`` and their ``truth`` ``[S, H, D_out]``; ``independent``:
    from non-overlapping starts in independent test trajectories (else from the test split)."""

    pred: torch.Tensor
    truth: torch.Tensor
    independent: bool
    windows: torch.Tensor  # the starting windows [S, T, D_in]


@dataclass
class LongRollouts:
    """Long autonomous rollouts ``pred [S, L, D_out]`` (numpy), the reference trajectory of
    the true system ``reference [L_ref, D_out]`` from another initial condition, and the
    Benettin sums ``log_growth [S]`` of a twin rollout over ``time`` time units."""

    pred: np.ndarray
    reference: np.ndarray
    log_growth: np.ndarray
    time: float
    dt: float


#: fresh-trajectory index of the long reference (test trajectories use 0, 1, ...)
REFERENCE_INDEX = 1_000_000
TWIN_DELTA = 1e-3


def vpt_steps(task: TaskData, cfg: EvalConfig) -> int:
    """Rollout length: ``rollout_steps``, raised to the VPT cap of ``vpt_cap_lyapunov``
    Lyapunov times when λ is known."""
    lyap, dt = task.lyapunov_exponent, task.dt
    steps = int(cfg.rollout_steps)
    if lyap and dt:
        steps = max(steps, int(math.ceil(cfg.vpt_cap_lyapunov / (lyap * dt))))
    return steps


def rollout_segments(task: TaskData, cfg: EvalConfig) -> tuple[torch.Tensor, int, bool]:
    """Non-overlapping ``[window + steps]`` segments ``[S, window + steps, D_in]`` for the
    closed-loop rollouts, the rollout length, and whether they are independent trajectories.

    With ``task.fresh_series``: ``rollout_starts`` segments spread over
    ``test_trajectories`` fresh trajectories, each laid end to end. Otherwise evenly
    spaced (possibly overlapping) starts in the test split."""
    window = int(task.train.x.shape[1])
    if task.fresh_series is not None:
        steps = vpt_steps(task, cfg)
        seg = window + steps
        n_traj = min(cfg.test_trajectories, cfg.rollout_starts)
        per = int(math.ceil(cfg.rollout_starts / n_traj))
        parts = []
        for i in range(n_traj):
            series = task.fresh_series(i, per * seg)
            parts += [series[j * seg:(j + 1) * seg] for j in range(per)]
        return torch.stack(parts[:cfg.rollout_starts]), steps, True
    series = task.test_series
    steps = min(cfg.rollout_steps, series.shape[0] - window)
    if steps <= 0:
        raise ValueError("test series too short for a rollout")
    first = torch.linspace(0, series.shape[0] - window - steps, cfg.rollout_starts).round().long().unique()
    return series[first[:, None] + torch.arange(window + steps)], steps, False


def rollout(model: nn.Module, task: TaskData, cfg: EvalConfig, device: str) -> Rollouts:
    """Closed-loop forecasts on :func:`rollout_segments`; exogenous columns take their true values."""
    segments, steps, independent = rollout_segments(task, cfg)
    window = int(task.train.x.shape[1])
    windows, future = segments[:, :window], segments[:, window:]
    pred, _, _ = feed_back(model, windows, steps, task.target_index, device, driver=future)
    return Rollouts(pred, future[..., task.target_index], independent, windows)


def long_steps(task: TaskData, cfg: EvalConfig) -> int:
    """Length of the long rollouts: ``long_lyapunov_times / (λ dt)`` steps but at least
    ``long_steps`` (maps reach 100 Lyapunov times in a few hundred steps, too few for a
    spectrum), or ``long_steps`` when λ is unknown."""
    lyap, dt = task.lyapunov_exponent, task.dt
    if lyap and dt:
        return max(int(math.ceil(cfg.long_lyapunov_times / (lyap * dt))), int(cfg.long_steps))
    return int(cfg.long_steps)


def long_rollouts_available(task: TaskData, cfg: EvalConfig) -> bool:
    """Long-term statistics need fresh trajectories (for the reference) and no exogenous input."""
    return (task.kind == "forecast" and task.fresh_series is not None and cfg.long_lyapunov_times > 0
            and len(task.target_index) == task.input_size)


def rollouts_with_long(model: nn.Module, task: TaskData, cfg: EvalConfig, device: str
                       ) -> tuple[Rollouts, LongRollouts]:
    """One batched closed-loop pass from every start of :func:`rollout_segments` (the first
    ``long_starts`` with a Benettin twin) for ``max(VPT length, long length)`` steps: its
    first steps are the VPT rollouts, the first :func:`long_steps` steps of the first
    ``long_starts`` starts the long rollouts, compared with a reference trajectory as long (fresh index
    :data:`REFERENCE_INDEX`). Needs :func:`long_rollouts_available`."""
    segments, steps, independent = rollout_segments(task, cfg)
    window, long = int(task.train.x.shape[1]), long_steps(task, cfg)
    windows, future = segments[:, :window], segments[:, window:]
    n = min(cfg.long_starts, len(windows))
    pred, growth, counted = feed_back(model, windows, max(steps, long), task.target_index, device,
                                        delta=TWIN_DELTA, twins=n)
    short = Rollouts(pred[:, :steps], future[..., task.target_index], independent, windows)
    reference = task.fresh_series(REFERENCE_INDEX, long)[..., task.target_index]
    dt = float(task.dt or 1.0)
    return short, LongRollouts(pred[:n, :long].double().numpy(), reference.double().numpy(),
                               growth[:n], counted * dt, dt)


class EvalContext:
    """What a metric's ``compute(ctx)`` reads (see :class:`dpbench.specs.MetricSpec`).

    ``model``, ``task`` (:class:`~dpbench.data.TaskData`), ``config``
    (:class:`~dpbench.harness.suite.EvalConfig`), ``device``; computed on first use and
    shared by all metrics: ``predictions`` ``[n, T_out, D_out]`` (test windows),
    ``rollouts`` (:class:`Rollouts`), ``long_rollouts`` (:class:`LongRollouts`).
    ``samples`` collects raw per-rollout values (``TrialResult.samples``)."""

    def __init__(self, model: nn.Module, task: TaskData, config: EvalConfig, device: str):
        self.model, self.task, self.config, self.device = model, task, config, device
        self.samples: dict[str, list[float]] = {}

    def provides(self, need: str) -> bool:
        """Whether this evaluation can give ``need`` (one of ``METRIC_NEEDS``)."""
        if need in ("predictions", "model"):
            return True
        if need == "rollouts":
            return self.task.kind == "forecast"
        if need == "long_rollouts":
            return long_rollouts_available(self.task, self.config)
        return False

    @cached_property
    def predictions(self) -> torch.Tensor:
        return predict(self.model, self.task.test.x, self.device, self.config.eval_batch_size)

    @cached_property
    def _both(self) -> tuple[Rollouts, LongRollouts]:
        return rollouts_with_long(self.model, self.task, self.config, self.device)

    @cached_property
    def rollouts(self) -> Rollouts:
        if self.provides("long_rollouts"):  # one pass gives both (the VPT rollouts are its start)
            return self._both[0]
        return rollout(self.model, self.task, self.config, self.device)

    @cached_property
    def long_rollouts(self) -> LongRollouts:
        return self._both[1]

    def example(self) -> dict[str, torch.Tensor]:
        """The first rollout and its truth (and the first long rollout and the reference),
        for the forecast and attractor figures; only what was computed."""
        out: dict[str, torch.Tensor] = {}
        if "rollouts" in self.__dict__:
            out.update(pred=self.rollouts.pred[0], truth=self.rollouts.truth[0])
        if "long_rollouts" in self.__dict__:
            lr = self.long_rollouts
            out.update(long_pred=torch.as_tensor(lr.pred[0], dtype=torch.float32),
                       long_truth=torch.as_tensor(lr.reference, dtype=torch.float32),
                       dt=torch.tensor(lr.dt))
        return out


def _numbers(where: str, items: Any, registry: Registry, table: str | None = None) -> dict[str, float]:
    """``{key: float}`` of ``items``; every key must be a registered metric (of report
    table ``table`` when given) and every value a number, else :class:`ContractError`."""
    out = {}
    for key, v in items:
        spec = registry.metric(key) if isinstance(key, str) else None
        if spec is None or (table is not None and spec.table != table):
            if table is None:
                raise ContractError(f"{where} returned {key!r}, which is not a registered metric")
            valid = ", ".join(s.name for s in registry.metrics_where(table=table)) or "none"
            raise ContractError(f"{where} returned {key!r}, which is not a registered metric of table "
                                f"{table!r} (registered: {valid}; register a MetricSpec with table={table!r} "
                                "through dpbench_register_metrics)")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ContractError(f"{where}: value {key}={v!r} is not a number")
        out[key] = float(v)
    return out


def _values(spec: MetricSpec, value: Any, registry: Registry) -> dict[str, float]:
    """A metric's output as ``{key: float}``; keys must be registered metrics."""
    items = value.items() if isinstance(value, dict) else [(spec.name, value)]
    return _numbers(f"metric {spec.name!r} (plugin {spec.plugin!r})", items, registry)


def check_model_metrics(spec: ModelSpec, value: Any, registry: Registry) -> dict[str, float]:
    """What a model's :attr:`ModelSpec.metrics` returned, as ``{key: float}``: a dict whose
    keys are registered metrics of table ``"model"`` (the model's plugin registers them)
    and whose values are numbers; anything else is a :class:`ContractError` (one line
    naming the key and the registered model metrics) that fails the trial and that
    ``dpbench check-plugin`` reports."""
    where = f"{owner(spec)}: metrics"
    if not isinstance(value, dict):
        raise ContractError(f"{where} must return a dict, got {type(value).__name__}")
    return _numbers(where, value.items(), registry, table="model")


def evaluate(model: nn.Module, task: TaskData, cfg: EvalConfig, device: str,
             registry: Registry) -> tuple[dict[str, float], dict[str, list[float]], dict[str, torch.Tensor]]:
    """Every registered trial-scope metric of ``task.kind`` whose needs this evaluation
    provides. Returns ``(metrics, samples, example)`` (:meth:`EvalContext.example`)."""
    ctx = EvalContext(model, task, cfg, device)
    out: dict[str, float] = {}
    for spec in registry.metrics_where(scope="trial", tasks=task.kind):
        if spec.compute is None or not all(ctx.provides(n) for n in spec.needs):
            continue
        out.update(_values(spec, resolve(spec.compute)(ctx), registry))
    return out, ctx.samples, ctx.example()


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

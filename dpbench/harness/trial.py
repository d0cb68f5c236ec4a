"""One trial, start to end: data → sized model → training → scoring → a TrialResult."""
from __future__ import annotations

import gc
import math
import signal
import statistics
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
import torch

from dpbench.data import TaskData, prepare
from dpbench.harness import evaluate as E
from dpbench.harness.budget import build_at_budget
from dpbench.harness.fit import fit as fit_model
from dpbench.harness.suite import Trial
from dpbench.harness.timing import cuda_peak_memory_mb, reset_peak_memory, training_step_memory_mb
from dpbench.harness.train import Diverged, Pruned, TrainResult, TrialTimeout, train
from dpbench.plugins import Registry
from dpbench.results import TrialResult
from dpbench.specs import ModelSpec, owner, resolve


ContractError = E.ContractError  # a plugin's model or metrics broke the documented contract


@contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TrialTimeout` in the main thread after ``seconds`` (SIGALRM)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise TrialTimeout(f"trial exceeded --trial-timeout {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_output(spec: ModelSpec, model: torch.nn.Module, task: TaskData, device: str) -> None:
    """The model must map ``[B, T, D_in]`` to ``[B, output_steps, output_size]``."""
    x = task.train.x[:2].to(device)
    with torch.no_grad():
        y = model(x)
    expected = (x.shape[0], task.output_steps, task.output_size)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        found = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ContractError(
            f"model {spec.name!r} (plugin {spec.plugin!r}) broke the model contract: "
            f"output {found} for input {tuple(x.shape)}, expected {expected}"
        )


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def _plugin_metrics(spec: ModelSpec, model, task: TaskData, device: str, batch: int,
                    registry: Registry) -> dict[str, float]:
    diag = E.collect_diagnostics(model, task.test.x, device, batch) if spec.diagnostics else {}
    return E.check_model_metrics(spec, resolve(spec.metrics, owner(spec))(model, task, diag), registry)


def budget_metrics(result: TrainResult) -> dict[str, float]:
    """What the optimisation cost and whether it converged (ordinary metrics, so they reach
    results.csv and the report)."""
    return {"steps_run": float(result.steps), "sequences_seen": float(result.sequences_seen),
            "converged": float(result.converged), "stopped_early": float(result.stopped_early),
            "best_step": float(result.best_step)}


def curve_samples(result: TrainResult) -> dict[str, list[float]]:
    """The learning curve: step, mean training loss since the last validation, validation loss."""
    return {"curve_step": result.curve_step, "curve_train_loss": result.curve_train_loss,
            "curve_val_loss": result.curve_val_loss}


def tuned_metrics(tuned: dict[str, Any]) -> dict[str, float]:
    """The numeric values tuning chose, as ``tuned_<key>`` metrics (results.csv rows)."""
    return {f"tuned_{k}": float(v) for k, v in tuned.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def execute(trial: Trial, registry: Registry, on_progress: Callable[[int, float, float], None] | None = None,
            artifacts: dict[str, Any] | None = None) -> TrialResult:
    """Run ``trial``; exceptions propagate (the runner classifies them).

    ``artifacts``, when given, receives ``"rollout"`` (forecast: the first closed-loop
    test rollout and its truth, and the first long rollout and the reference trajectory) and
    ``"diagnostics"`` (the first K test samples) for the runner to save. A tuning trial
    (``trial.tuning`` set) trains with the test split sealed, reports each validation loss to
    its Optuna trial and returns the validation and budget figures only.
    """
    spec, dspec = registry.model(trial.model), registry.dataset(trial.dataset)
    (cfg, model_params), ecfg, device = trial.effective(), trial.eval, trial.device
    start = time.perf_counter()
    task = prepare(dspec, trial.dataset_params, trial.seed)
    on_eval = None
    if trial.tuning is not None:
        from dpbench.harness.tuning import objective_reporter

        task.seal_test()
        on_eval = objective_reporter(trial.tuning)
    reset_peak_memory(device)
    torch.manual_seed(trial.seed)
    np.random.seed(trial.seed % 2**32)
    built = build_at_budget(spec, task, model_params, cfg.param_budget, cfg.budget_tolerance)
    model = built.module.to(device)
    check_output(spec, model, task, device)
    if trial.tuning is not None:
        result = train(model, task, cfg, trial.seed, device, on_progress, eval_batch_size=ecfg.eval_batch_size,
                       on_eval=on_eval)
        metrics = {**budget_metrics(result), "best_val_loss": result.best_val_loss,
                   "param_count": float(built.param_count), "wall_time_s": time.perf_counter() - start}
        return trial.result(metrics=metrics, samples=curve_samples(result), info={"hparams": built.hparams})
    cuda = device.startswith("cuda")
    fitted: dict[str, Any] = {}
    if spec.fitted:  # closed-form models (spec.fit) replace the gradient loop; scoring is shared
        result, fitted, step_memory = fit_model(spec, model, task, trial.seed, device, ecfg.eval_batch_size)
        built = built.recounted(cfg.param_budget, cfg.budget_tolerance)  # a fit may resize its readout
        result.converged = True  # a closed-form fit has no optimisation to converge
    else:
        step_memory = math.nan if cuda else training_step_memory_mb(model, task, cfg)
        result = train(model, task, cfg, trial.seed, device, on_progress, eval_batch_size=ecfg.eval_batch_size)
    samples: dict[str, list[float]] = {"train_seq_per_s": result.train_seq_per_s, **curve_samples(result)}
    metrics, extra_samples, example = E.evaluate(model, task, ecfg, device, registry)
    samples.update(extra_samples)
    if artifacts is not None and example:
        artifacts["rollout"] = example
    infer = E.inference_throughput(model, task, cfg.batch_size, ecfg.timing_repeats, device)
    samples["infer_seq_per_s"] = infer
    if spec.metrics is not None:
        metrics.update(_plugin_metrics(spec, model, task, device, ecfg.eval_batch_size, registry))
    if artifacts is not None and ecfg.save_diagnostics > 0 and spec.diagnostics:
        artifacts["diagnostics"] = E.collect_diagnostics(model, task.test.x[:ecfg.save_diagnostics], device, ecfg.save_diagnostics)
    if ecfg.gradient_sensitivity and task.kind == "recall":
        curve = E.gradient_sensitivity(model, task, device)
        samples["grad_sensitivity"] = curve.tolist()
        metrics["grad_ratio_first_last"] = float(curve[0] / max(curve[-1], 1e-30))
    metrics.update(
        param_count=float(built.param_count), budget_ok=float(built.budget_ok),
        train_seq_per_s=_median(result.train_seq_per_s), infer_seq_per_s=_median(infer),
        peak_memory_mb=cuda_peak_memory_mb() if cuda else step_memory, best_val_loss=result.best_val_loss,
        final_train_loss=result.final_train_loss, train_time_s=result.seconds,
        wall_time_s=time.perf_counter() - start, **budget_metrics(result), **tuned_metrics(trial.tuned),
    )
    if spec.fitted:
        metrics["fixed_param_count"] = float(built.fixed_count)
    info = {"hparams": built.hparams, "width": built.width, "best_step": result.best_step,
            **({"tuned": dict(trial.tuned)} if trial.tuned else {}),
            "plugin": spec.plugin, "dataset_plugin": dspec.plugin, "block": trial.block,
            "shapes": {"x": list(task.train.x.shape[1:]), "y": list(task.train.y.shape[1:])},
            "n": {"train": len(task.train), "val": len(task.val), "test": len(task.test)}}
    if spec.fitted:
        info["fit"] = fitted
    del model
    return trial.result(metrics=metrics, samples=samples, info=info)


def classify(exc: BaseException) -> str:
    """Status for a failed trial."""
    if isinstance(exc, Diverged):
        return "diverged"
    if isinstance(exc, TrialTimeout):
        return "timeout"
    if isinstance(exc, Pruned):
        return "pruned"
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    if (oom and isinstance(exc, oom)) or isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "oom"
    return "failed"


_WARM = False


def warm_up_torch() -> None:
    """Run one optimiser step on a dummy parameter so that torch's lazy imports happen
    before any trial's time limit starts (a SIGALRM landing inside an import would leave
    modules half-initialised for the rest of the process)."""
    global _WARM
    if _WARM:
        return
    p = torch.nn.Parameter(torch.zeros(2))
    for opt in (torch.optim.Adam([p]), torch.optim.AdamW([p]), torch.optim.SGD([p], lr=0.1), torch.optim.RMSprop([p])):
        (p.sum() * 0).backward()
        torch.nn.utils.clip_grad_norm_([p], 1.0)
        opt.step()
        opt.zero_grad()
    _WARM = True


def run_trial(trial: Trial, registry: Registry, timeout: float | None = None,
              on_progress: Callable[[int, float, float], None] | None = None,
              artifacts: dict[str, Any] | None = None) -> TrialResult:
    """:func:`execute` with failure isolation: any exception becomes a status + message."""
    if timeout:
        warm_up_torch()
    try:
        with time_limit(timeout):
            return execute(trial, registry, on_progress, artifacts)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # isolate: the run goes on
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        return trial.result(classify(exc), message)
    finally:
        gc.collect()
        if trial.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()

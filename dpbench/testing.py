"""The plugin conformance kit: call these from a plugin's own tests.

:func:`check_model_spec` and :func:`check_dataset_spec` run every contract check of
:mod:`dpbench.specs` on one spec and collect *all* failures; if any, they raise a single
``AssertionError`` listing each as ``"<check>: expected ..., found ..."``. ``dpbench
check-plugin NAME`` runs the same checks from the shell.

Model checks, for every task kind the model declares (on small tasks: Lorenz-63 windows
``[B, 8, 3] -> [B, 2, 3]`` and copy windows with class targets, unless ``tasks`` is given):
build with the defaults; output shape ``[B, output_steps, output_size]``; float32 output
for float32 input; finite output; determinism (same seed → same initial weights and
outputs, two eval-mode forwards equal); gradient flow to every trainable parameter;
parameter count strictly increasing in the width hyper-parameter (w, 2w, 3w); moving to
CUDA where available (same outputs within 1e-4); ``state_dict`` round trip (a differently
seeded copy loaded with the state gives the same outputs); declared diagnostics are
filled without changing the output; ``spec.metrics`` (if any) returns a dict of numbers
whose keys are registered metrics of table ``"model"`` (:func:`dpbench.harness.evaluate.check_model_metrics`).

Fitted models (``spec.fit`` set, see :mod:`dpbench.harness.fit`) are fitted on the small
task's train/validation splits before the checks; determinism then means same seed →
same fitted outputs, the ``state_dict`` round trip carries the fitted state into an
unfitted copy, and the gradient check is replaced by: the fit returns a dict (or None),
leaves finite outputs, and changes them (unless the model has no fitted parameters).

Dataset checks (on :func:`small_params` unless ``params`` is given): the generator returns
the declared type; same seed → identical data; arrays have the documented shapes, dtypes
and finite values; splits are non-empty and disjoint (forecast: contiguous, non-overlapping
index ranges; recall: at most ``max_overlap`` of the test windows also occur in train);
metadata keys are strings with JSON-able values or numpy arrays, ``dt`` and
``lyapunov_exponent`` positive numbers.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping

import numpy as np
import torch

from dpbench.data import RecallSplits, Split, TaskData, Trajectory, generate_raw, prepare, split_bounds
from dpbench.harness.budget import build, count_params
from dpbench.specs import DatasetSpec, ModelSpec, owner, resolve, validate_dataset_spec, validate_model_spec

BATCH = 3
#: Size parameters shrunk by :func:`small_params` (value: the small setting).
SMALL_SIZES = {"length": 400, "n_train": 24, "n_val": 12, "n_test": 12}
SMALL_FORECAST = {"window": 8, "horizon": 2}
DEFAULT_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "forecast": ("lorenz", {"length": 400, "window": 8, "horizon": 2}),
    "recall": ("copy", {"lag": 3, "symbols": 2, "n_train": 16, "n_val": 8, "n_test": 8}),
}


class Failures:
    """Collects ``"<check>: <message>"`` lines; :meth:`raise_if_any` raises them as one."""

    def __init__(self, subject: str):
        self.subject, self.items = subject, []

    def add(self, check: str, message: str) -> None:
        self.items.append(f"{check}: {message}")

    def expect(self, ok: bool, check: str, expected: str, found: Any) -> bool:
        if not ok:
            self.add(check, f"expected {expected}, found {found}")
        return ok

    def attempt(self, check: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or ``None`` with a failure recorded when it raises."""
        try:
            return fn()
        except Exception as exc:
            self.add(check, f"raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None

    def raise_if_any(self) -> None:
        if self.items:
            lines = "\n".join(f"  - {m}" for m in self.items)
            raise AssertionError(f"{self.subject}: {len(self.items)} conformance failure(s):\n{lines}")


# ---------------------------------------------------------------------------- models

def default_tasks(kinds: tuple[str, ...] = ("forecast", "recall")) -> dict[str, TaskData]:
    """Small built-in tasks, one per kind (generated without touching the data cache)."""
    from dpbench.plugins import get_registry

    reg = get_registry()
    return {k: prepare(reg.dataset(DEFAULT_TASKS[k][0]), DEFAULT_TASKS[k][1], seed=0, use_cache=False)
            for k in kinds}


def _seeded_build(spec: ModelSpec, task: TaskData, hparams: dict[str, Any], seed: int,
                  fit: bool = True) -> torch.nn.Module:
    """Build with ``seed`` (numpy's global RNG seeded too); fitted models are fitted too."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = build(spec, task, hparams)
    if fit and spec.fitted:
        resolve(spec.fit, owner(spec))(model, task.train, task.val, seed=seed)
    return model.eval()


def _forward(model: torch.nn.Module, x: torch.Tensor, **kw: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(x, **kw)


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 0.0) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float().cpu(), b.float().cpu(), atol=atol, rtol=0))


def _check_width(f: Failures, spec: ModelSpec, task: TaskData, hparams: dict[str, Any], tag: str) -> None:
    if spec.width is None or spec.width in hparams:
        return
    w = int(spec.defaults[spec.width])
    widths = (w, 2 * w, 3 * w)
    counts = f.attempt(f"{tag} width scaling", lambda: [
        count_params(build(spec, task, {**hparams, spec.width: v})) for v in widths])
    if counts is not None:
        f.expect(all(a < b for a, b in zip(counts, counts[1:])), f"{tag} width scaling",
                 f"parameter count strictly increasing in {spec.width} at {list(widths)}", counts)


def _check_model_on(f: Failures, spec: ModelSpec, task: TaskData, hparams: dict[str, Any]) -> None:
    tag = f"[{task.kind}]"
    x = task.train.x[:BATCH]
    model = f.attempt(f"{tag} build", lambda: _seeded_build(spec, task, hparams, 0))
    if model is None:
        return
    y = f.attempt(f"{tag} forward", lambda: _forward(model, x))
    expected = (x.shape[0], task.output_steps, task.output_size)
    if not f.expect(isinstance(y, torch.Tensor) and tuple(y.shape) == expected, f"{tag} output shape",
                    f"{expected} for input {tuple(x.shape)}",
                    tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__):
        return
    f.expect(y.dtype == torch.float32, f"{tag} dtype", "torch.float32 output for float32 input", y.dtype)
    f.expect(bool(torch.isfinite(y).all()), f"{tag} finite", "finite outputs", "NaN or inf")
    again = f.attempt(f"{tag} determinism", lambda: _forward(_seeded_build(spec, task, hparams, 0), x))
    if again is not None:
        f.expect(_same(y, again), f"{tag} determinism", "same seed -> identical outputs",
                 f"max difference {float((y - again).abs().max()):.3g}")
    f.expect(_same(y, _forward(model, x)), f"{tag} determinism",
             "two eval-mode forwards of one model to agree", "different outputs")
    if spec.fitted:
        _check_fit(f, spec, task, hparams, x, y, tag)
    else:
        _check_gradients(f, spec, task, hparams, x, tag)
    _check_width(f, spec, task, hparams, tag)
    other = f.attempt(f"{tag} state_dict", lambda: _seeded_build(spec, task, hparams, 1, fit=False))
    if other is not None and f.attempt(f"{tag} state_dict", lambda: other.load_state_dict(model.state_dict())) is not None:
        f.expect(_same(y, _forward(other, x)), f"{tag} state_dict",
                 "a copy loaded from state_dict() to give the same outputs", "different outputs")
    if torch.cuda.is_available():
        moved = f.attempt(f"{tag} device", lambda: _forward(model.to("cuda"), x.to("cuda")))
        if moved is not None:
            f.expect(moved.device.type == "cuda" and _same(y, moved, atol=1e-4), f"{tag} device",
                     "cuda outputs on cuda equal to the cpu outputs within 1e-4", moved.device)
        model.to("cpu")
    if spec.diagnostics:
        diag: dict[str, Any] = {}
        y2 = f.attempt(f"{tag} diagnostics", lambda: _forward(model, x, diagnostics=diag))
        if y2 is not None:
            f.expect(set(spec.diagnostics) <= set(diag), f"{tag} diagnostics",
                     f"keys {sorted(spec.diagnostics)} filled", sorted(diag))
            f.expect(_same(y, y2, atol=1e-6), f"{tag} diagnostics",
                     "the same output with diagnostics={}", "a different output")
    if spec.metrics is not None:
        _check_metrics(f, spec, model, task, tag)


def _check_metrics(f: Failures, spec: ModelSpec, model: torch.nn.Module, task: TaskData, tag: str) -> None:
    """``spec.metrics`` on the (untrained) model returns registered model metrics only."""
    from dpbench.harness.evaluate import check_model_metrics, collect_diagnostics
    from dpbench.plugins import get_registry

    def run() -> Any:
        diag = collect_diagnostics(model, task.test.x, "cpu", 64) if spec.diagnostics else {}
        return resolve(spec.metrics, owner(spec))(model, task, diag)

    value = f.attempt(f"{tag} metrics", run)
    if value is not None:
        f.attempt(f"{tag} metrics", lambda: check_model_metrics(spec, value, get_registry()))


def _check_fit(f: Failures, spec: ModelSpec, task: TaskData, hparams: dict[str, Any],
               x: torch.Tensor, fitted_y: torch.Tensor, tag: str) -> None:
    model = _seeded_build(spec, task, hparams, 0, fit=False)
    before = _forward(model, x)
    chosen = f.attempt(f"{tag} fit", lambda: resolve(spec.fit, owner(spec))(model, task.train, task.val, seed=0))
    f.expect(chosen is None or isinstance(chosen, dict), f"{tag} fit", "fit to return a dict or None",
             type(chosen).__name__)
    after = _forward(model.eval(), x)
    f.expect(bool(torch.isfinite(after).all()), f"{tag} fit", "finite outputs after the fit", "NaN or inf")
    f.expect(_same(after, fitted_y), f"{tag} fit", "fit to be deterministic for a seed", "different outputs")
    if count_params(model) > 0:  # a model with nothing to fit (persistence) may stay as built
        f.expect(not _same(before, after), f"{tag} fit", "the fit to change the outputs", "unchanged outputs")


def _check_gradients(f: Failures, spec: ModelSpec, task: TaskData, hparams: dict[str, Any],
                     x: torch.Tensor, tag: str) -> None:
    model = _seeded_build(spec, task, hparams, 0).train()
    out = f.attempt(f"{tag} gradient", lambda: model(x))
    if out is None:
        return
    f.attempt(f"{tag} gradient", lambda: (out.float() ** 2).mean().backward())
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    f.expect(bool(params), f"{tag} gradient", "at least one trainable parameter", "none")
    missing = [n for n, p in params if p.grad is None]
    f.expect(not missing, f"{tag} gradient", "a gradient on every trainable parameter",
             f"none on {missing}")
    bad = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
    f.expect(not bad, f"{tag} gradient", "finite gradients", f"NaN/inf on {bad}")


def check_model_spec(spec: ModelSpec, hparams: Mapping[str, Any] | None = None,
                     tasks: Mapping[str, TaskData] | None = None) -> None:
    """Run the model checks on every task kind ``spec`` supports.

    Args:
        spec: the model plugin's spec.
        hparams: hyper-parameters to build with (default: the spec's defaults).
        tasks: ``{kind: TaskData}`` to check on (default: :func:`default_tasks`).

    Raises:
        AssertionError: listing every failed check (expected vs found).
    """
    f = Failures(f"model {getattr(spec, 'name', spec)!r}")
    if f.attempt("spec", lambda: validate_model_spec(spec)) is None:
        f.raise_if_any()
    kinds = tuple(k for k in spec.tasks if tasks is None or k in tasks)
    f.expect(bool(kinds), "tasks", f"a task to check among {spec.tasks}", "none given")
    available = dict(tasks) if tasks is not None else default_tasks(kinds)
    for kind in kinds:
        _check_model_on(f, spec, available[kind], dict(hparams or {}))
    f.raise_if_any()


# -------------------------------------------------------------------------- datasets

def small_params(spec: DatasetSpec) -> dict[str, Any]:
    """The spec's size parameters shrunk (:data:`SMALL_SIZES`; ``lag`` to at most 4) and,
    for forecasts, short windows, so that a check takes a fraction of a second."""
    small: dict[str, Any] = {}
    for key, value in spec.defaults.items():
        if key in SMALL_SIZES and isinstance(value, int) and value > SMALL_SIZES[key]:
            small[key] = SMALL_SIZES[key]
        elif key == "lag" and isinstance(value, int) and value > 4:
            small[key] = 4
    if spec.kind == "forecast":
        small.update(SMALL_FORECAST)
    return small


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _check_metadata(f: Failures, metadata: Mapping[str, Any], where: str) -> None:
    for key, value in metadata.items():
        if not f.expect(isinstance(key, str), f"{where} metadata", "string keys", repr(key)):
            continue
        f.expect(isinstance(value, np.ndarray) or _jsonable(value), f"{where} metadata",
                 f"{key!r} JSON-able or a numpy array", type(value).__name__)
    for key in ("dt", "lyapunov_exponent"):
        value = metadata.get(key)
        if value is not None:
            f.expect(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
                     f"{where} metadata", f"{key} a positive number", repr(value))


def _check_trajectory(f: Failures, spec: DatasetSpec, traj: Trajectory) -> None:
    v = np.asarray(traj.values)
    f.expect(v.ndim == 2 and v.shape[1] == len(traj.columns), "values shape",
             f"[L, {len(traj.columns)}] (one column per name)", list(v.shape))
    f.expect(np.issubdtype(v.dtype, np.floating), "values dtype", "a float array", v.dtype)
    f.expect(bool(np.isfinite(v).all()), "values finite", "finite values", "NaN or inf")
    f.expect(len(set(traj.columns)) == len(traj.columns) and all(isinstance(c, str) for c in traj.columns),
             "columns", "unique string names", traj.columns)
    f.expect(set(traj.exogenous) <= set(traj.columns), "exogenous", f"a subset of {traj.columns}",
             traj.exogenous)
    f.expect(len(traj.exogenous) < len(traj.columns), "exogenous", "at least one predicted column",
             traj.exogenous)
    f.expect("dt" in {**spec.metadata, **traj.metadata}, "metadata",
             "'dt' in the spec's or the trajectory's metadata", "no dt")
    _check_metadata(f, traj.metadata, "trajectory")
    bounds = split_bounds(len(v))
    f.expect(all(a[1] <= b[0] for a, b in zip(bounds, bounds[1:])), "split disjointness",
             "non-overlapping train/val/test ranges", bounds)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in x.reshape(x.shape[0], -1).numpy()}


def _check_split(f: Failures, name: str, s: Split, raw: RecallSplits, like: Split) -> None:
    n = len(s)
    if not f.expect(n > 0, f"{name} split", "at least one window", 0):
        return
    f.expect(s.x.dtype.is_floating_point and s.x.ndim == 3, f"{name} x", "float [n, T, D]",
             f"{s.x.dtype} {list(s.x.shape)}")
    f.expect(tuple(s.x.shape[1:]) == tuple(like.x.shape[1:]), f"{name} x", f"[n, *{list(like.x.shape[1:])}] like train",
             list(s.x.shape))
    if raw.loss == "ce":
        ok = s.y.dtype == torch.int64 and s.y.ndim == 2 and s.y.shape[0] == n
        f.expect(ok, f"{name} y", "int64 class indices [n, T_out]", f"{s.y.dtype} {list(s.y.shape)}")
        if ok and s.y.numel():
            f.expect(int(s.y.min()) >= 0 and int(s.y.max()) < raw.output_size, f"{name} y",
                     f"classes in [0, {raw.output_size})", f"[{int(s.y.min())}, {int(s.y.max())}]")
    else:
        f.expect(s.y.dtype.is_floating_point and s.y.ndim == 3 and s.y.shape[2] == raw.output_size,
                 f"{name} y", f"float [n, T_out, {raw.output_size}]", f"{s.y.dtype} {list(s.y.shape)}")
    if s.mask is not None:
        f.expect(tuple(s.mask.shape) == tuple(s.y.shape[:2]), f"{name} mask", f"shape {list(s.y.shape[:2])}",
                 list(s.mask.shape))


def _check_recall(f: Failures, raw: RecallSplits, max_overlap: float) -> None:
    f.expect(raw.loss in ("ce", "mse"), "loss", "'ce' or 'mse'", repr(raw.loss))
    f.expect(isinstance(raw.output_size, int) and raw.output_size > 0, "output_size", "a positive int",
             repr(raw.output_size))
    for name in ("train", "val", "test"):
        _check_split(f, name, getattr(raw, name), raw, raw.train)
    if raw.baseline is not None:
        f.expect(isinstance(raw.baseline, (int, float)), "baseline", "a number or None", repr(raw.baseline))
    _check_metadata(f, raw.metadata, "recall")
    if len(raw.test) and len(raw.train):
        train = _rows(raw.train.x)
        test = raw.test.x.reshape(len(raw.test), -1).numpy()
        shared = sum(row.tobytes() in train for row in test) / len(test)
        f.expect(shared <= max_overlap, "split disjointness",
                 f"at most {max_overlap:.0%} of the test windows also in train", f"{shared:.0%}")


def _equal_raw(a: Any, b: Any) -> bool:
    if isinstance(a, Trajectory):
        return a.columns == b.columns and np.array_equal(a.values, b.values)
    return all(torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(getattr(a, s).y, getattr(b, s).y)
               for s in ("train", "val", "test"))


def check_dataset_spec(spec: DatasetSpec, params: Mapping[str, Any] | None = None,
                       seed: int = 0, max_overlap: float = 0.5) -> None:
    """Run the dataset checks on ``spec`` generated with ``params`` (default:
    :func:`small_params`) and ``seed``.

    Raises:
        AssertionError: listing every failed check (expected vs found).
    """
    f = Failures(f"dataset {getattr(spec, 'name', spec)!r}")
    if f.attempt("spec", lambda: validate_dataset_spec(spec)) is None:
        f.raise_if_any()
    _check_metadata(f, spec.metadata, "spec")
    params = dict(small_params(spec) if params is None else params)
    own = {**spec.defaults, **{k: v for k, v in params.items() if k in spec.defaults}}
    raw = f.attempt("generate", lambda: generate_raw(spec, own, seed, use_cache=False))
    if raw is None:
        f.raise_if_any()
    want = Trajectory if spec.kind == "forecast" else RecallSplits
    if not f.expect(isinstance(raw, want), "generate", f"a {want.__name__} ({spec.kind})", type(raw).__name__):
        f.raise_if_any()
    again = f.attempt("determinism", lambda: generate_raw(spec, own, seed, use_cache=False))
    if again is not None:
        f.expect(_equal_raw(raw, again), "determinism", f"identical data for seed {seed}", "different data")
    if isinstance(raw, Trajectory):
        _check_trajectory(f, spec, raw)
        f.attempt("prepare", lambda: prepare(spec, params, seed, use_cache=False))
    else:
        _check_recall(f, raw, max_overlap)
    f.raise_if_any()


class TrueSystemModel(torch.nn.Module):
    """The true system as a forecast model: a yardstick for metrics on rollouts.

    ``forward(x [B, T, D])`` takes the last state of each window (train-normalised units),
    maps it to physical units with ``mean``/``std`` (``TaskData.metadata["train_mean"]``,
    ``["train_std"]``), advances it by ``step`` (one sampling interval of the true
    equations, ``[B, D] -> [B, D]`` in float64 numpy, e.g. ``substeps`` RK4 steps of
    :func:`dpbench.datasets._common.rk4_step`) and returns it normalised as
    ``[B, 1, D]`` float32. An independent trajectory of the system, scored like a model,
    should come out near perfect on every long-term statistic."""

    def __init__(self, step: Callable[[np.ndarray], np.ndarray], mean: Any, std: Any):
        super().__init__()
        self.step = step
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = x[:, -1].detach().double().cpu().numpy() * self.std + self.mean
        nxt = (self.step(state) - self.mean) / self.std
        return torch.as_tensor(nxt, dtype=torch.float32, device=x.device)[:, None]

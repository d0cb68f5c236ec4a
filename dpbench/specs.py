"""What a plugin registers: :class:`ModelSpec`, :class:`DatasetSpec` and :class:`MetricSpec`.

All are frozen dataclasses validated by :func:`validate_model_spec` /
:func:`validate_dataset_spec` / :func:`validate_metric_spec` when a plugin registers them. Factories and generators may
be given as ``"package.module:attribute"`` strings so that listing the registry never
imports a plugin's heavy optional dependencies; they are resolved on first use.

Model contract
--------------
``spec.build(input_size, input_steps, output_size, output_steps, task, **hparams)``
returns an ``nn.Module`` whose ``forward(x)`` maps ``x [B, input_steps, input_size]``
(batch first, float; ``T = input_steps`` is the dataset's fixed window length) to
``y [B, output_steps, output_size]``. For class targets ``output_size`` is the number of
classes and ``y`` holds logits. ``task`` says how outputs relate to inputs:

* ``"forecast"``: ``y[:, j]`` is the state ``j + 1`` steps *after* the last input step;
* ``"recall"``: ``y[:, j]`` is the answer *at* input step ``T - output_steps + j`` (the
  outputs are aligned with the last ``output_steps`` inputs; the model may not look at
  inputs after that step only if it is causal, which recall tasks do not require). A model that can explain itself accepts an optional
keyword ``diagnostics: dict | None`` and, when given a dict, stores tensors in it
(``"attention"``: ``[B, T_out, T_in]``, ``"read_weights"``, ``"usage"``, ``"gate"``, ...)
without changing ``y``; ``spec.diagnostics`` names the keys it fills.

Dataset contract
----------------
``spec.generate(params, seed)`` returns either a :class:`dpbench.data.Trajectory` (task kind
``forecast``: one long raw series that the core splits, normalises with train statistics
and windows) or a :class:`dpbench.data.RecallSplits` (task kind ``recall``: ready-made
train/val/test windows). ``params`` holds the spec's defaults updated with the user's
values; the options every forecast dataset shares (``noise``, ``observe``, ``window``,
``horizon``, ``seed``) are handled by the core and need not be declared.

Metric contract
---------------
``spec.compute(ctx)`` (trial scope) receives the evaluation context of one trained model
(:class:`dpbench.harness.evaluate.EvalContext`: ``ctx.model``, ``ctx.task``, ``ctx.config``,
``ctx.device``, and lazily computed ``ctx.predictions`` ``[n, T_out, D_out]`` on the test
split, ``ctx.rollouts`` (closed-loop forecasts and their truth), ``ctx.long_rollouts``
(long autonomous rollouts and a long reference trajectory), ``ctx.samples`` (a dict to
store raw per-rollout values in)) and returns a number (the value of ``spec.name``) or a
dict of numbers whose keys are registered metric names, optionally qualified as
``name@qualifier`` (e.g. ``vpt_lyapunov@0.3``); ``{}`` when the metric does not apply.
Run scope: ``spec.compute(trials)`` receives every :class:`dpbench.results.TrialResult`
of a run and returns derived rows (``results.json["derived"]``).
A spec without ``compute`` names a value another metric (or the trial itself:
parameter count, throughput, memory) fills; it still gives the value a title, a direction
and a gate. A metric a model computes itself (:attr:`ModelSpec.metrics`, e.g. the hybrid's
recovered ``sigma_hat``) is such a spec with ``table="model"``. Every consumer
(evaluation, summary, report, ``compare``) reads these specs.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

#: The built-in families (``dpbench list`` shows each model's). A plugin may use any other
#: name that follows the name grammar (e.g. ``"reservoir"``); these are not a closed set.
FAMILIES = ("feedforward", "recurrent", "attention", "memory", "plastic", "hybrid", "classical")
TASK_KINDS = ("forecast", "recall")
#: What a metric's computation needs from the evaluation (see :class:`MetricSpec`).
METRIC_NEEDS = ("predictions", "rollouts", "long_rollouts", "model", "trials")
#: How ``dpbench compare`` gates a metric.
METRIC_GATES = ("accuracy", "throughput", "none")
#: The report table a metric appears in; ``"model"``: a metric a model computes itself
#: (:attr:`ModelSpec.metrics`), the only table such a metric may be registered in.
METRIC_TABLES = ("accuracy", "vpt", "long_term", "cost", "budget", "model", "none")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SCALAR = (bool, int, float, str)


class SpecError(ValueError):
    """A plugin registered a spec that breaks the contract."""


class FactoryImportError(ImportError):
    """A ``"module:attr"`` target failed to import; the message names the owning plugin."""


def resolve(target: Callable[..., Any] | str, owner: str = "") -> Callable[..., Any]:
    """Return ``target`` itself, or import it from a ``"module:attribute"`` string.

    ``owner`` (e.g. ``"model 'esn' (plugin 'p')"``) prefixes the error when the import fails.
    """
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        where = f"{owner}: " if owner else ""
        raise FactoryImportError(f"{where}cannot import {target!r} ({type(exc).__name__}: {exc})") from exc
    return obj


def owner(spec: Any) -> str:
    """``"model 'esn' (plugin 'dpbench.models.classical')"``: how errors name a spec."""
    what = "model" if isinstance(spec, ModelSpec) else "dataset"
    return f"{what} {spec.name!r} (plugin {spec.plugin!r})"


@dataclass(frozen=True)
class ModelSpec:
    """A model plugin.

    Attributes:
        name: CLI name (lower case, digits, ``-``/``_``).
        family: a built-in family of :data:`FAMILIES` or any other name matching the
            name grammar (``[a-z0-9][a-z0-9_-]*``).
        description: one line shown by ``dpbench list``.
        citation: the paper (and equation) the model implements.
        factory: ``(input_size, input_steps, output_size, output_steps, task, **hparams)
            -> nn.Module``, all keyword arguments, or a
            ``"module:attr"`` string resolving to it.
        defaults: default hyper-parameters (scalars only); the user's values override them.
        width: the integer hyper-parameter the harness scales to hit a parameter budget
            (``None``: the model has a fixed size).
        tasks: task kinds the model supports.
        diagnostics: keys the model fills when ``forward(x, diagnostics={})`` is called.
        metrics: optional ``(model, task: TaskData, diagnostics: dict) -> dict[str, float]``
            (or ``"module:attr"``): extra metrics computed after training, on the test
            split; ``diagnostics`` holds the model's diagnostics over the whole test split
            (concatenated along the batch axis). Every key must be a registered metric of
            table ``"model"`` (the model's plugin registers its :class:`MetricSpec` through
            ``dpbench_register_metrics``, with its title, direction and gate); another key
            fails the trial (:func:`dpbench.harness.evaluate.check_model_metrics`). Values land in the results,
            the report's model-metric table and ``dpbench compare`` like any metric.
        uses_metadata: when true the factory also receives ``metadata=`` the dataset's
            metadata dict (``dt``, ``train_mean``, ``train_std``, ``columns``, system
            parameters, ...), e.g. for hybrid models that need physical units.
        fit: ``None`` for a model trained by the harness's gradient loop; otherwise the
            model is *fitted*: ``fit(model, train: Split, val: Split, *, seed: int) ->
            dict | None`` (or ``"module:attr"``) replaces the loop, e.g. a closed-form ridge
            readout whose hyper-parameters are chosen on ``val``. It fills the model's
            weights in place and may return what it chose (JSON-able), which lands in the
            trial's ``info["fit"]``. Scoring is shared with trained models.
        extra: the ``pip install dpbench[extra]`` the model needs, if any (shown by
            ``dpbench list``).
        plugin: name of the plugin that registered the spec (set by the registry).
    """

    name: str
    family: str
    description: str
    citation: str
    factory: Callable[..., Any] | str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    width: str | None = None
    tasks: tuple[str, ...] = TASK_KINDS
    diagnostics: tuple[str, ...] = ()
    metrics: Callable[..., Any] | str | None = None
    uses_metadata: bool = False
    fit: Callable[..., Any] | str | None = None
    extra: str | None = None
    plugin: str = ""

    @property
    def fitted(self) -> bool:
        """Whether the harness calls :attr:`fit` instead of the gradient loop."""
        return self.fit is not None

    def build(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str = "forecast", metadata: Mapping[str, Any] | None = None, **hparams: Any,
    ):
        """Instantiate the module with the defaults updated by ``hparams``."""
        merged = {**self.defaults, **hparams}
        if self.uses_metadata:
            merged["metadata"] = dict(metadata or {})
        return resolve(self.factory, owner(self))(
            input_size=input_size, input_steps=input_steps, output_size=output_size,
            output_steps=output_steps, task=task, **merged,
        )


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset plugin.

    Attributes:
        name: CLI name.
        kind: ``"forecast"`` or ``"recall"``.
        description: one line shown by ``dpbench list``.
        citation: source of the equations (or of the data).
        generate: ``(params: dict, seed: int) -> Trajectory | RecallSplits`` or a
            ``"module:attr"`` string resolving to it.
        defaults: the dataset's own parameters and their defaults (scalars only).
        param_docs: one line per parameter in ``defaults``.
        metadata: static facts: ``dt`` (sampling step, time units), ``lyapunov_exponent``
            (largest, per time unit) where known, the system's parameters, equations.
        version: bump when generated data changes (part of the cache key).
        extra: the ``pip install dpbench[extra]`` the generator needs, if any.
        positional: the parameter a bare first value sets, so that ``dysts:Lorenz`` means
            ``dysts:system=Lorenz`` (must be one of ``defaults``).
        independent_trajectories: forecast only: ``generate(params, other_seed)`` with
            ``params["length"]`` changed gives an independent trajectory of the same
            system (a fresh initial condition): the harness then scores rollouts on such
            trajectories (:attr:`dpbench.data.TaskData.fresh_series`). A generator can
            veto it per instance with ``Trajectory.metadata["independent_trajectories"] = False``
            (e.g. a non-stationary series). Needs a ``length`` parameter.
        plugin: name of the plugin that registered the spec (set by the registry).
    """

    name: str
    kind: str
    description: str
    citation: str
    generate: Callable[..., Any] | str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    param_docs: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    version: str = "1"
    extra: str | None = None
    positional: str | None = None
    independent_trajectories: bool = False
    plugin: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A metric plugin: one named value with its title, direction and CI gate.

    Attributes:
        name: the key in ``TrialResult.metrics`` (lower case, digits, ``_``); a result key
            ``name@qualifier`` (one metric at another setting, e.g. a threshold) belongs
            to this spec too.
        title: short column title with its unit, e.g. ``"VPT (LT)"`` (LT: Lyapunov times; the
            terminal summary fits 120 columns).
        description: one line: what it measures.
        citation: the paper or equation it implements.
        higher_is_better: direction; ``None`` for a descriptive value (never starred, never gated).
        compute: see the module docstring (``None``: filled by another metric or the trial).
        tasks: task kinds it applies to.
        needs: what ``compute`` reads, from :data:`METRIC_NEEDS` (the harness skips a metric
            whose needs the evaluation does not provide, e.g. long rollouts switched off).
        tolerance: absolute floor of the CI gate's tolerance (``dpbench compare``).
        gate: ``"accuracy"`` (per-seed means, tolerance rule), ``"throughput"`` (raw timing
            samples, Mann–Whitney rule) or ``"none"``.
        table: the report table that shows it, from :data:`METRIC_TABLES`.
        order: column order within a table (lower first).
        scope: ``"trial"`` (computed per trained model) or ``"run"`` (derived over trials).
        plugin: name of the plugin that registered the spec (set by the registry).
    """

    name: str
    title: str
    description: str
    citation: str
    higher_is_better: bool | None
    compute: Callable[..., Any] | str | None = None
    tasks: tuple[str, ...] = TASK_KINDS
    needs: tuple[str, ...] = ("predictions",)
    tolerance: float = 0.0
    gate: str = "accuracy"
    table: str = "accuracy"
    order: int = 100
    scope: str = "trial"
    plugin: str = ""


def metric_base(key: str) -> str:
    """The registered metric name of a result key: ``vpt_lyapunov@0.3`` → ``vpt_lyapunov``."""
    return key.split("@", 1)[0]


def _check_common(spec: ModelSpec | DatasetSpec | MetricSpec, what: str) -> None:
    if not isinstance(spec.name, str) or not _NAME.match(spec.name):
        raise SpecError(f"{what} name {spec.name!r} must match {_NAME.pattern}")
    for attr in ("description", "citation"):
        value = getattr(spec, attr)
        if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
            raise SpecError(f"{what} {spec.name!r}: {attr} must be one non-empty line")
    if isinstance(spec, MetricSpec):
        return
    target = spec.factory if isinstance(spec, ModelSpec) else spec.generate
    if not (callable(target) or (isinstance(target, str) and ":" in target)):
        raise SpecError(f"{what} {spec.name!r}: factory must be callable or 'module:attr'")
    for key, value in spec.defaults.items():
        if not isinstance(value, _SCALAR):
            raise SpecError(f"{what} {spec.name!r}: default {key}={value!r} is not a scalar")


def validate_model_spec(spec: Any) -> ModelSpec:
    """Raise :class:`SpecError` unless ``spec`` is a well-formed :class:`ModelSpec`."""
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"expected a ModelSpec, got {type(spec).__name__}")
    _check_common(spec, "model")
    if not isinstance(spec.family, str) or not _NAME.match(spec.family):
        raise SpecError(f"model {spec.name!r}: family {spec.family!r} must match {_NAME.pattern} "
                        f"(built-in families: {', '.join(FAMILIES)})")
    for attr in ("metrics", "fit"):
        target = getattr(spec, attr)
        if target is not None and not (callable(target) or (isinstance(target, str) and ":" in target)):
            raise SpecError(f"model {spec.name!r}: {attr} must be None, callable or 'module:attr'")
    if not spec.tasks or any(t not in TASK_KINDS for t in spec.tasks):
        raise SpecError(f"model {spec.name!r}: tasks {spec.tasks!r} must be from {TASK_KINDS}")
    if spec.width is not None and not isinstance(spec.defaults.get(spec.width), int):
        raise SpecError(f"model {spec.name!r}: width {spec.width!r} must be an int default")
    return spec


def validate_dataset_spec(spec: Any) -> DatasetSpec:
    """Raise :class:`SpecError` unless ``spec`` is a well-formed :class:`DatasetSpec`."""
    if not isinstance(spec, DatasetSpec):
        raise SpecError(f"expected a DatasetSpec, got {type(spec).__name__}")
    _check_common(spec, "dataset")
    if spec.kind not in TASK_KINDS:
        raise SpecError(f"dataset {spec.name!r}: kind {spec.kind!r} not in {TASK_KINDS}")
    undocumented = set(spec.defaults) - set(spec.param_docs)
    if undocumented:
        raise SpecError(f"dataset {spec.name!r}: undocumented parameters {sorted(undocumented)}")
    if spec.positional is not None and spec.positional not in spec.defaults:
        raise SpecError(f"dataset {spec.name!r}: positional {spec.positional!r} is not a parameter")
    if spec.independent_trajectories and (spec.kind != "forecast" or "length" not in spec.defaults):
        raise SpecError(f"dataset {spec.name!r}: independent_trajectories needs a forecast dataset with 'length'")
    lyap = spec.metadata.get("lyapunov_exponent")
    if lyap is not None and not (isinstance(lyap, (int, float)) and lyap > 0):
        raise SpecError(f"dataset {spec.name!r}: lyapunov_exponent must be a positive number")
    return spec


def validate_metric_spec(spec: Any) -> MetricSpec:
    """Raise :class:`SpecError` unless ``spec`` is a well-formed :class:`MetricSpec`."""
    if not isinstance(spec, MetricSpec):
        raise SpecError(f"expected a MetricSpec, got {type(spec).__name__}")
    _check_common(spec, "metric")
    if "@" in spec.name or "-" in spec.name:
        raise SpecError(f"metric {spec.name!r}: name may not contain '@' or '-'")
    if not isinstance(spec.title, str) or not spec.title.strip():
        raise SpecError(f"metric {spec.name!r}: title must be a non-empty string")
    if spec.higher_is_better not in (True, False, None):
        raise SpecError(f"metric {spec.name!r}: higher_is_better must be True, False or None")
    target = spec.compute
    if target is not None and not (callable(target) or (isinstance(target, str) and ":" in target)):
        raise SpecError(f"metric {spec.name!r}: compute must be callable, 'module:attr' or None")
    if not spec.tasks or any(t not in TASK_KINDS for t in spec.tasks):
        raise SpecError(f"metric {spec.name!r}: tasks {spec.tasks!r} must be from {TASK_KINDS}")
    if any(n not in METRIC_NEEDS for n in spec.needs):
        raise SpecError(f"metric {spec.name!r}: needs {spec.needs!r} must be from {METRIC_NEEDS}")
    for attr, valid in (("gate", METRIC_GATES), ("table", METRIC_TABLES), ("scope", ("trial", "run"))):
        if getattr(spec, attr) not in valid:
            raise SpecError(f"metric {spec.name!r}: {attr}={getattr(spec, attr)!r}; valid: {', '.join(valid)}")
    if spec.table == "model" and spec.compute is not None:
        raise SpecError(f"metric {spec.name!r}: a model metric (table='model') is computed by the model's "
                        "spec.metrics, so its compute must be None")
    if spec.gate != "none" and spec.higher_is_better is None:
        raise SpecError(f"metric {spec.name!r}: a gated metric needs a direction (higher_is_better)")
    if not (isinstance(spec.tolerance, (int, float)) and spec.tolerance >= 0):
        raise SpecError(f"metric {spec.name!r}: tolerance must be a number >= 0")
    return spec

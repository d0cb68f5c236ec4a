"""What a plugin registers: :class:`ModelSpec` and :class:`DatasetSpec`.

Both are frozen dataclasses validated by :func:`validate_model_spec` /
:func:`validate_dataset_spec` when a plugin registers them. Factories and generators may
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
            (concatenated along the batch axis). Values land in the results like any metric.
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
    plugin: str = ""


def _check_common(spec: ModelSpec | DatasetSpec, what: str) -> None:
    if not isinstance(spec.name, str) or not _NAME.match(spec.name):
        raise SpecError(f"{what} name {spec.name!r} must match {_NAME.pattern}")
    for attr in ("description", "citation"):
        value = getattr(spec, attr)
        if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
            raise SpecError(f"{what} {spec.name!r}: {attr} must be one non-empty line")
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
    lyap = spec.metadata.get("lyapunov_exponent")
    if lyap is not None and not (isinstance(lyap, (int, float)) and lyap > 0):
        raise SpecError(f"dataset {spec.name!r}: lyapunov_exponent must be a positive number")
    return spec

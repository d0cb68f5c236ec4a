"""Suites: TOML files that fix what is compared and under which budget.

A suite has global ``[train]`` and ``[eval]`` tables and one or more ``[[block]]`` tables;
each block crosses its ``models`` with its ``datasets`` (strings like
``"lstm:hidden=32"`` or ``"copy:lag=[10,50]"``; a bracketed value is a sweep) and may
override ``train``/``eval`` keys. ``models = ["*"]`` means every registered model that
supports the dataset's task kind. Built-in suites live in ``dpbench/suites/``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from dpbench.data import dataset_defaults
from dpbench.params import UsageError, coerce, format_params, parse_item, split_list, typed_params
from dpbench.plugins import Registry
from dpbench.results import TrialResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the tomli backport (a dependency there)
    import tomli as tomllib

DEVICES = ("cpu", "cuda", "all")


@dataclass(frozen=True)
class TrainConfig:
    """The fixed training budget of a suite (identical for every model in a block)."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clip: float = 1.0
    eval_every: int = 50
    param_budget: int = 10000
    budget_tolerance: float = 0.1
    timing_chunk: int = 10
    #: learning-rate schedule: constant, cosine (with ``warmup``) or plateau (halve on a stalled val loss)
    schedule: str = "constant"
    #: linear warm-up over this fraction of ``steps`` (cosine and plateau)
    warmup: float = 0.0
    #: early stopping: stop after this many validations without improvement (0: off)
    patience: int = 0
    #: relative improvement of the validation loss that counts as one (early stopping, plateau)
    min_delta: float = 0.0


@dataclass(frozen=True)
class EvalConfig:
    """How trained models are scored.

    Closed-loop rollouts (``rollout_starts`` of them) start from non-overlapping windows
    of ``test_trajectories`` independent test trajectories when the dataset provides them
    (else from evenly spaced, possibly overlapping, starts in the test split) and last
    ``max(rollout_steps, vpt_cap_lyapunov / (λ dt))`` steps when λ is known: the VPT cap.
    ``vpt_thresholds`` (comma-separated) adds VPT at other ε. Long-term statistics use
    ``long_starts`` rollouts of ``long_lyapunov_times / (λ dt)`` steps, at least
    ``long_steps`` (``long_steps`` when λ is unknown; ``long_lyapunov_times = 0`` switches
    them off) against a reference trajectory as long.
    """

    rollout_steps: int = 200
    rollout_starts: int = 8
    vpt_threshold: float = 0.5
    timing_repeats: int = 7
    eval_batch_size: int = 256
    save_diagnostics: int = 0
    gradient_sensitivity: bool = False
    vpt_thresholds: str = "0.3,0.5"
    vpt_cap_lyapunov: float = 15.0
    test_trajectories: int = 4
    bootstrap_resamples: int = 1000
    long_lyapunov_times: float = 100.0
    long_steps: int = 1000
    long_starts: int = 4


#: TrainConfig settings a search space may tune (model hyper-parameters are the others)
TUNABLE_TRAIN = ("lr", "weight_decay")
PRUNERS = ("median", "halving", "none")
TUNE_KEYS = ("budget", "steps", "pruner", "seed", "space")
SPACE_FORM = "{low=<a>, high=<b>[, log=true]} with a < b, or {choices=[...]}"


@dataclass(frozen=True)
class TuneConfig:
    """Per-block tuning on the validation split (:mod:`dpbench.harness.tuning`).

    ``budget`` Optuna trials per (model, dataset, device) study (0: no tuning), each
    trained for ``steps`` (0: the block's ``train.steps``) on data seed ``seed``, pruned by
    ``pruner``. ``space`` maps a setting (``lr``, ``weight_decay`` or a model
    hyper-parameter such as the fnn's ``delays``) to ``{"low", "high", "log"}`` or
    ``{"choices"}``.
    """

    budget: int = 0
    steps: int = 0
    pruner: str = "median"
    seed: int = 0
    space: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.budget > 0 and bool(self.space)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (not isinstance(v, float) or math.isfinite(v))


def _parse_range(key: str, raw: Any, where: str) -> dict[str, Any]:
    """One search-space entry, validated: a numeric range or a list of choices."""
    bad = f"{where}: {key}={raw!r}"
    if not isinstance(raw, dict):
        raise UsageError(f"{bad} is not a range; valid form: {SPACE_FORM}")
    unknown = sorted(set(raw) - {"low", "high", "log", "choices"})
    if unknown:
        raise UsageError(f"{bad}: unknown field {unknown[0]!r}; valid form: {SPACE_FORM}")
    if "choices" in raw:
        ch = raw["choices"]
        if set(raw) != {"choices"} or not isinstance(ch, list) or not ch or not all(_number(c) or isinstance(c, str) for c in ch):
            raise UsageError(f"{bad}: choices must be a non-empty list of numbers or strings; valid form: {SPACE_FORM}")
        return {"choices": list(ch)}
    low, high, log = raw.get("low"), raw.get("high"), raw.get("log", False)
    if not (_number(low) and _number(high)) or not isinstance(log, bool):
        raise UsageError(f"{bad}: needs numeric low and high; valid form: {SPACE_FORM}")
    if not low < high:
        raise UsageError(f"{bad}: empty range (low={low} >= high={high}); valid form: {SPACE_FORM}")
    if log and low <= 0:
        raise UsageError(f"{bad}: a log range needs low > 0 (got low={low}); valid form: {SPACE_FORM}")
    return {"low": low, "high": high, "log": log}


def parse_tune(table: Any, base: TuneConfig, where: str) -> TuneConfig:
    """``[tune]`` / ``[block.tune]`` → :class:`TuneConfig` (block keys override suite keys)."""
    if table is None:
        return base
    if not isinstance(table, dict):
        raise UsageError(f"{where}: expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(TUNE_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(TUNE_KEYS)}")
    budget = table.get("budget", base.budget or 8)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise UsageError(f"{where}: budget={budget!r} must be an integer >= 1 (trials per study, e.g. budget = 8)")
    steps = table.get("steps", base.steps)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise UsageError(f"{where}: steps={steps!r} must be an integer >= 1 (0: the block's train.steps)")
    seed = table.get("seed", base.seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"{where}: seed={seed!r} must be a non-negative integer")
    pruner = table.get("pruner", base.pruner)
    if pruner not in PRUNERS:
        raise UsageError(f"{where}: pruner={pruner!r}; valid: {', '.join(PRUNERS)}")
    raw_space = table.get("space", None)
    if raw_space is None:
        space = dict(base.space)
    elif not isinstance(raw_space, dict):
        raise UsageError(f"{where}.space: expected a table of ranges; valid form: lr = {SPACE_FORM}")
    else:
        space = {k: _parse_range(k, v, f"{where}.space") for k, v in raw_space.items()}
    if not space:
        raise UsageError(f"{where}: a tuning budget needs a search space, e.g. space.lr = {{low=1e-4, high=3e-2, log=true}}")
    return TuneConfig(budget=budget, steps=steps, pruner=pruner, seed=seed, space=space)


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "plateau")


# The settings hashed into every trial id (those of id scheme 1); see Trial.trial_id.
ID_TRAIN_FIELDS = ("steps", "batch_size", "lr", "optimizer", "weight_decay", "clip", "eval_every",
                   "param_budget", "budget_tolerance", "timing_chunk")
ID_EVAL_FIELDS = ("rollout_steps", "rollout_starts", "vpt_threshold", "timing_repeats",
                  "eval_batch_size", "save_diagnostics", "gradient_sensitivity")


def _fields_of(cfg: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The id-scheme-1 settings of ``cfg``, in declaration order (a field dropped since is skipped)."""
    values = asdict(cfg)
    return {k: values[k] for k in names if k in values}


def _non_default(cfg: Any, hashed: tuple[str, ...]) -> dict[str, Any]:
    """Settings of ``cfg`` outside ``hashed`` whose value differs from the dataclass default."""
    default = asdict(type(cfg)())
    return {k: v for k, v in asdict(cfg).items() if k not in hashed and v != default.get(k)}


@dataclass(frozen=True)
class Trial:
    """One (model, dataset, seed, device) cell of the comparison."""

    model: str
    model_params: dict[str, Any]
    dataset: str
    dataset_params: dict[str, Any]
    seed: int
    device: str
    train: TrainConfig
    eval: EvalConfig
    block: str = ""
    #: values chosen by tuning (TrainConfig keys and model hyper-parameters); part of the id
    tuned: dict[str, Any] = field(default_factory=dict)
    #: set on a tuning trial only: ``{"storage", "study", "trial_id", "pruner"}`` (never written to results)
    tuning: dict[str, Any] | None = None

    def effective(self) -> tuple[TrainConfig, dict[str, Any]]:
        """The training settings and model hyper-parameters with the tuned values applied."""
        train = {k: v for k, v in self.tuned.items() if k in TUNABLE_TRAIN}
        model = {k: v for k, v in self.tuned.items() if k not in TUNABLE_TRAIN}
        return replace(self.train, **train), {**self.model_params, **model}

    @property
    def trial_id(self) -> str:
        """Stable id from everything that defines the trial (used to resume runs).

        The settings that existed when run directories were first written
        (:data:`ID_TRAIN_FIELDS`, :data:`ID_EVAL_FIELDS`) are always hashed, exactly as then;
        a setting added later enters the hash only when it differs from its default. So a
        new setting with a default leaves every existing id, and every old run directory's
        ``--resume``, unchanged.
        """
        parts: list[Any] = [self.model, sorted(self.model_params.items()), self.dataset,
                            sorted(self.dataset_params.items()), self.seed, self.device,
                            _fields_of(self.train, ID_TRAIN_FIELDS), _fields_of(self.eval, ID_EVAL_FIELDS)]
        extra = {**_non_default(self.train, ID_TRAIN_FIELDS), **_non_default(self.eval, ID_EVAL_FIELDS)}
        if extra:
            parts.append(sorted(extra.items()))
        if self.tuned:
            parts.append(["tuned", sorted(self.tuned.items())])
        return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:12]

    def result(self, status: str = "ok", error: str | None = None, **measured: Any) -> TrialResult:
        """A :class:`~dpbench.results.TrialResult` carrying this trial's identity."""
        return TrialResult(self.trial_id, self.model, dict(self.model_params), self.dataset,
                           dict(self.dataset_params), self.seed, self.device, status, error,
                           self.block, **measured)

    @property
    def label(self) -> str:
        mp = f":{format_params(self.model_params)}" if self.model_params else ""
        dp = f":{format_params(self.dataset_params)}" if self.dataset_params else ""
        return f"{self.model}{mp} on {self.dataset}{dp} seed {self.seed} {self.device}"


@dataclass(frozen=True)
class Block:
    name: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    train: TrainConfig
    eval: EvalConfig
    tune: TuneConfig = TuneConfig()


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    devices: tuple[str, ...]
    blocks: tuple[Block, ...]
    source: str = ""
    #: worker processes when ``--jobs`` is not given (0: one per usable CPU core, each with one
    #: torch thread; README "Threads")
    jobs: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _config(cls, table: Any, base, where: str):
    if table is None:
        return base
    if not isinstance(table, dict):
        raise UsageError(f"{where}: expected a table, got {type(table).__name__}")
    valid = {f.name: getattr(base, f.name) for f in fields(cls)}
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(valid)}")
    table = {k: (",".join(str(x) for x in v) if isinstance(v, list) and isinstance(valid.get(k), str) else v)
             for k, v in table.items()}
    values = {k: coerce(k, v, valid[k], where) for k, v in table.items()}
    cfg = replace(base, **values)
    _check_config(cfg, where)
    return cfg


def _check_config(cfg, where: str) -> None:
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise UsageError(f"{where}: {f.name}={value} must be >= 0")
    if isinstance(cfg, TrainConfig):
        if cfg.optimizer not in OPTIMIZERS:
            raise UsageError(f"{where}: optimizer={cfg.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        for key in ("steps", "batch_size", "eval_every", "param_budget", "timing_chunk"):
            if getattr(cfg, key) < 1:
                raise UsageError(f"{where}: {key} must be >= 1")
        if not cfg.lr > 0:
            raise UsageError(f"{where}: lr must be > 0")
        if cfg.schedule not in SCHEDULES:
            raise UsageError(f"{where}: schedule={cfg.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if not 0 <= cfg.warmup < 1:
            raise UsageError(f"{where}: warmup={cfg.warmup} must be a fraction of steps in [0, 1)")
    if isinstance(cfg, EvalConfig):
        for key in ("rollout_steps", "rollout_starts", "timing_repeats", "eval_batch_size",
                    "test_trajectories", "long_starts", "bootstrap_resamples"):
            if getattr(cfg, key) < 1:
                raise UsageError(f"{where}: {key} must be >= 1")
        try:
            eps = [float(x) for x in cfg.vpt_thresholds.split(",") if x.strip()]
        except ValueError:
            eps = [-1.0]
        if not all(e > 0 for e in eps):
            raise UsageError(f"{where}: vpt_thresholds={cfg.vpt_thresholds!r}; valid: positive numbers "
                             "joined by ',', e.g. \"0.3,0.5\"")


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(split_list(value))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise UsageError(f"{where}: expected a non-empty list of strings")
    return tuple(value)


SUITE_KEYS = ("name", "description", "seeds", "devices", "jobs", "train", "eval", "tune", "block")
BLOCK_KEYS = ("name", "models", "datasets", "train", "eval", "tune")


def parse_suite(data: dict[str, Any], source: str) -> Suite:
    """Validate a parsed TOML document into a :class:`Suite`."""
    where = f"suite {source}"
    unknown = sorted(set(data) - set(SUITE_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(SUITE_KEYS)}")
    train = _config(TrainConfig, data.get("train"), TrainConfig(), f"{where} [train]")
    evalc = _config(EvalConfig, data.get("eval"), EvalConfig(), f"{where} [eval]")
    tune = parse_tune(data.get("tune"), TuneConfig(), f"{where} [tune]")
    seeds = data.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise UsageError(f"{where}: seeds must be a count or a list of ints")
    if isinstance(seeds, int):
        if not 1 <= seeds <= 1000:
            raise UsageError(f"{where}: seeds={seeds} must be between 1 and 1000")
        seeds = list(range(seeds))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise UsageError(f"{where}: seeds must be non-negative ints")
    devices = data.get("devices", ["cpu"])
    devices = [devices] if isinstance(devices, str) else devices
    if not isinstance(devices, list) or not devices or any(d not in DEVICES for d in devices):
        raise UsageError(f"{where}: devices={devices!r}; valid: {', '.join(DEVICES)}")
    raw_blocks = data.get("block", [])
    if not isinstance(raw_blocks, list) or not raw_blocks:
        raise UsageError(f"{where}: needs at least one [[block]] with models and datasets")
    blocks = []
    for i, b in enumerate(raw_blocks):
        bw = f"{where} block {i + 1}"
        if not isinstance(b, dict):
            raise UsageError(f"{bw}: expected a table")
        unknown = sorted(set(b) - set(BLOCK_KEYS))
        if unknown:
            raise UsageError(f"{bw}: unknown key {unknown[0]!r}; valid: {', '.join(BLOCK_KEYS)}")
        if "models" not in b or "datasets" not in b:
            raise UsageError(f"{bw}: needs 'models' and 'datasets'")
        name = b.get("name", f"block{i + 1}")
        if not isinstance(name, str):
            raise UsageError(f"{bw}: name must be a string")
        blocks.append(Block(
            name=name, models=_str_list(b["models"], f"{bw} models"),
            datasets=_str_list(b["datasets"], f"{bw} datasets"),
            train=_config(TrainConfig, b.get("train"), train, f"{bw} [train]"),
            eval=_config(EvalConfig, b.get("eval"), evalc, f"{bw} [eval]"),
            tune=parse_tune(b.get("tune"), tune, f"{bw} [block.tune]"),
        ))
    name, desc = data.get("name", source), data.get("description", "")
    if not isinstance(name, str) or not isinstance(desc, str):
        raise UsageError(f"{where}: name and description must be strings")
    jobs = data.get("jobs", 1)
    if jobs == "auto":
        jobs = 0
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1 and jobs != 0:
        raise UsageError(f"{where}: jobs={jobs!r} must be \"auto\" or a count >= 1")
    return Suite(name=name, description=desc, seeds=tuple(seeds), devices=tuple(devices),
                 blocks=tuple(blocks), source=source, jobs=jobs)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None, suite: Suite) -> int:
    """``--jobs`` when given, else the suite's ``jobs`` (0: :func:`usable_cores`)."""
    if jobs:
        return jobs
    return suite.jobs or usable_cores()


def builtin_suites() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("dpbench.suites").iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a TOML file by path."""
    path = Path(name_or_path)
    if name_or_path in builtin_suites():
        text = resources.files("dpbench.suites").joinpath(f"{name_or_path}.toml").read_text()
    elif path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read suite file {name_or_path!r}: {exc.__class__.__name__}") from None
    else:
        raise UsageError(f"unknown suite {name_or_path!r}; valid: {', '.join(builtin_suites())} or a .toml path")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"malformed suite {name_or_path!r}: {exc}") from None
    return parse_suite(data, name_or_path)


def scale_budget(suite: Suite, k: float) -> Suite:
    """``--budget-scale K``: every step cap, tuning budget and tuning step cap times ``k``
    (rounded, at least 1)."""
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
        raise UsageError(f"--budget-scale={k!r} must be a number > 0, e.g. 5")

    def times(n: int) -> int:
        return max(1, round(n * k)) if n else 0

    return replace(suite, blocks=tuple(
        replace(b, train=replace(b.train, steps=times(b.train.steps)),
                tune=replace(b.tune, budget=times(b.tune.budget), steps=times(b.tune.steps)))
        for b in suite.blocks))


def override(suite: Suite, models: str | None, datasets: str | None, seeds: int | None,
             devices: str | None, steps: int | None = None) -> Suite:
    """Apply CLI overrides: ``--models``/``--datasets`` replace every block's lists."""
    blocks = list(suite.blocks)
    if models or datasets:
        blocks = [replace(b, models=tuple(split_list(models)) if models else b.models,
                          datasets=tuple(split_list(datasets)) if datasets else b.datasets)
                  for b in blocks]
        if models and datasets:
            blocks = blocks[:1]
    if steps is not None:
        if steps < 1:
            raise UsageError(f"--steps={steps} must be >= 1")
        # tuning trials too: their step cap becomes the block's (tune.steps = 0)
        blocks = [replace(b, train=replace(b.train, steps=steps), tune=replace(b.tune, steps=0)) for b in blocks]
    new = replace(suite, blocks=tuple(blocks))
    if seeds is not None:
        if not 1 <= seeds <= 1000:
            raise UsageError(f"--seeds={seeds} must be between 1 and 1000")
        new = replace(new, seeds=tuple(range(seeds)))
    if devices is not None:
        if devices not in DEVICES:
            raise UsageError(f"--device={devices!r}; valid: {', '.join(DEVICES)}")
        new = replace(new, devices=(devices,))
    return new


def _expand(items: tuple[str, ...], spec_of, defaults_of, kind: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for item in items:
        name, raw = parse_item(item)
        typed = typed_params(name, raw, defaults_of(name), kind, getattr(spec_of(name), "positional", None))
        for params in typed if isinstance(typed, list) else [typed]:
            out.append((name, params))
    return out


def expand_trials(suite: Suite, registry: Registry, cuda_available: bool) -> tuple[list[Trial], list[str]]:
    """All trials of ``suite`` and notes (e.g. skipped devices). Raises UsageError for
    unknown names/parameters before anything runs."""
    notes: list[str] = []
    devices: list[str] = []
    for d in suite.devices:
        for dev in (("cpu", "cuda") if d == "all" else (d,)):
            if dev == "cuda" and not cuda_available:
                note = "cuda requested but not available: cuda trials skipped"
                if d == "cuda":
                    raise UsageError("--device cuda: no CUDA device is available (use cpu or all)")
                if note not in notes:
                    notes.append(note)
                continue
            if dev not in devices:
                devices.append(dev)
    trials: list[Trial] = []
    for bi, block in enumerate(suite.blocks):
        check_space(block, registry, f"suite {suite.source or suite.name} block {bi + 1} [block.tune.space]")
        datasets = _expand(block.datasets, registry.dataset, lambda n: dataset_defaults(registry.dataset(n)), "dataset")
        for dname, dparams in datasets:
            kind = registry.dataset(dname).kind
            if block.models == ("*",):
                models = [(m, {}) for m, s in sorted(registry.models.items()) if kind in s.tasks]
            else:
                models = _expand(block.models, registry.model, lambda n: dict(registry.model(n).defaults), "model")
            for mname, mparams in models:
                if kind not in registry.model(mname).tasks:
                    notes.append(f"{mname} does not support {kind} tasks: skipped on {dname}")
                    continue
                for seed in suite.seeds:
                    for dev in devices:
                        trials.append(Trial(mname, mparams, dname, dparams, seed, dev,
                                            block.train, block.eval, block.name))
    seen: set[tuple[str, str]] = set()
    unique = []
    for t in trials:  # the same trial listed twice in one block runs and shows once
        if (t.trial_id, t.block) not in seen:
            seen.add((t.trial_id, t.block))
            unique.append(t)
    return unique, notes


def run_key(trial: Trial, registry: Registry) -> str:
    """What decides a trial's outcome: :attr:`Trial.trial_id`'s settings without the
    block, with parameters equal to their defaults dropped (``lorenz`` and
    ``lorenz:drift=0.0`` generate the same data). A model's width parameter stays even at
    its default: given explicitly it switches off the parameter-budget sizing."""
    mspec, dspec = registry.model(trial.model), registry.dataset(trial.dataset)
    mdefaults, ddefaults = dict(mspec.defaults), dataset_defaults(dspec)
    mparams = {k: v for k, v in trial.model_params.items() if k == mspec.width or mdefaults.get(k, object()) != v}
    dparams = {k: v for k, v in trial.dataset_params.items() if ddefaults.get(k, object()) != v}
    parts = [trial.model, sorted(mparams.items()), trial.dataset, sorted(dparams.items()), trial.seed,
             trial.device, asdict(trial.train), asdict(trial.eval)]
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def identical_groups(trials: list[Trial], registry: Registry) -> list[list[Trial]]:
    """``trials`` grouped by :func:`run_key`, in first-appearance order: each group runs
    once (its first trial) and is reported under every member's block and parameters."""
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        groups.setdefault(run_key(t, registry), []).append(t)
    return list(groups.values())


def space_for(space: dict[str, dict[str, Any]], model_defaults: dict[str, Any],
              fixed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The part of a block's search space that applies to one model: the training keys and
    the model's own hyper-parameters, except those the suite fixed for it."""
    return {k: v for k, v in space.items()
            if k in TUNABLE_TRAIN or (k in model_defaults and k not in fixed)}


def check_space(block: Block, registry: Registry, where: str) -> None:
    """Every key of ``block``'s search space must be a tunable training setting or a
    hyper-parameter of a registered model (it applies to the block's models that have it;
    ``--models`` may leave none)."""
    if not block.tune.enabled:
        return
    valid = set(TUNABLE_TRAIN)
    for spec in registry.models.values():
        valid |= set(spec.defaults)
    for key in block.tune.space:
        if key not in valid:
            raise UsageError(f"{where}: unknown key {key!r}; valid: {', '.join(sorted(valid))}")


def suite_from_dict(d: dict[str, Any]) -> Suite:
    """Inverse of :meth:`Suite.to_dict` (used by ``--resume``)."""
    try:
        blocks = tuple(
            Block(name=b["name"], models=tuple(b["models"]), datasets=tuple(b["datasets"]),
                  train=TrainConfig(**b["train"]), eval=EvalConfig(**b["eval"]),
                  tune=TuneConfig(**b.get("tune", {})))
            for b in d["blocks"]
        )
        return Suite(name=d["name"], description=d["description"], seeds=tuple(d["seeds"]),
                     devices=tuple(d["devices"]), blocks=blocks, source=d.get("source", ""),
                     jobs=d.get("jobs", 1))
    except (KeyError, TypeError) as exc:
        raise UsageError(f"run config is malformed ({exc.__class__.__name__}: {exc})") from None

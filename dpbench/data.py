"""From a dataset plugin's raw output to the tensors a trial trains on.

A forecast plugin returns a :class:`Trajectory` (one raw series ``[L, D]``); the core
then, for every forecast dataset alike:

1. keeps the observed components (``observe``) plus exogenous inputs,
2. adds observation noise (``noise``, std relative to each component's std),
3. splits the series contiguously into train / val / test (70 / 15 / 15 %),
4. normalises with the *train* mean and std only,
5. cuts windows ``x [n, window, D_in] -> y [n, horizon, D_out]`` with stride 1 over each
   split (no test window is dropped; splits never share a sample).

A forecast dataset whose spec sets ``independent_trajectories`` also gives *fresh*
trajectories of the same system: the generator is called again with another seed (a new
initial condition, its own transient) and the ``length`` asked for; the result goes
through steps 1, 2 and 4 with the *train* statistics (:attr:`TaskData.fresh_series`). The
harness rolls out from non-overlapping starts in them and compares long rollouts with a
long one (docs/datasets.md).

A recall plugin returns :class:`RecallSplits` with ready windows. Both end as a
:class:`TaskData`. Generated raw data is cached on disk, keyed by the dataset's name,
version, parameters and seed (``$DPBENCH_CACHE``, default ``~/.cache/dpbench/data``).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from dpbench.params import UsageError, format_params
from dpbench.specs import DatasetSpec, owner, resolve

if TYPE_CHECKING:  # torch is imported by the functions that build tensors: listing stays light
    import torch

#: Options the core handles for every forecast dataset, with their defaults and docs.
FORECAST_OPTIONS: dict[str, Any] = {
    "noise": 0.0,
    "observe": "all",
    "window": 32,
    "horizon": 1,
    "seed": -1,
}
FORECAST_OPTION_DOCS: dict[str, str] = {
    "noise": "observation noise std, relative to each component's std",
    "observe": "observed components: 'all' or indices/names joined by '+', e.g. 0+2 or x+z",
    "window": "input length T of each window",
    "horizon": "output steps T_out predicted from each window",
    "seed": "data seed (-1: use the trial's seed)",
}
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
SPLITS = ("train", "val", "test")


@dataclass
class Trajectory:
    """A forecast plugin's raw output.

    Attributes:
        values: ``[L, D]`` float array, the clean series sampled every ``dt``.
        columns: ``D`` component names.
        exogenous: names of columns that are inputs (always observed, never predicted).
        metadata: facts computed while generating (e.g. a regime sequence ``[L]``).
    """

    values: np.ndarray
    columns: list[str]
    exogenous: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Split:
    """Windows of one split: ``x [n, T, D_in]``, ``y [n, T_out, D_out]`` (float) or
    ``y [n, T_out]`` (int64 class targets), ``mask [n, T_out]`` marks the scored steps."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class RecallSplits:
    """A recall plugin's output: ready windows per split.

    Attributes:
        train, val, test: :class:`Split` objects.
        loss: ``"ce"`` (``y`` holds class indices, ``output_size`` = classes) or ``"mse"``.
        output_size: classes (``ce``) or output dimension (``mse``).
        baseline: the trivial baseline's loss on this task (e.g. 10 ln 8 / (T + 20) for copy).
        metadata: facts about the task (lag, alphabet size, ...).
    """

    train: Split
    val: Split
    test: Split
    loss: str
    output_size: int
    baseline: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class TestSplitSealed(RuntimeError):
    """The test split was read while sealed (during tuning, before the final fit)."""

    __test__ = False  # not a pytest class


class _Sealed:
    """Stands in for the test split or test series while they are sealed: any read raises
    :class:`TestSplitSealed`."""

    def __init__(self, what: str):
        object.__setattr__(self, "_what", what)

    def _refuse(self, *_: Any) -> Any:
        raise TestSplitSealed(f"the {object.__getattribute__(self, '_what')} was read while sealed (tuning sees train and val only)")

    def __getattr__(self, name: str) -> Any:
        return self._refuse()

    __len__ = __getitem__ = __iter__ = __array__ = _refuse


@dataclass
class TaskData:
    """Everything a trial needs from a dataset. :meth:`seal_test` hides the test split
    (tuning), :meth:`unseal_test` gives it back (the final fit)."""

    name: str
    params: dict[str, Any]
    kind: str
    loss: str
    train: Split
    val: Split
    test: Split
    input_size: int
    output_size: int
    output_steps: int
    metadata: dict[str, Any]
    baseline: float | None = None
    #: forecast only: the normalised test series ``[L_test, D_in]`` for closed-loop rollout
    test_series: torch.Tensor | None = None
    #: forecast only: indices of the predicted (non-exogenous) columns within ``D_in``
    target_index: list[int] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    #: forecast only, when the dataset supports it: ``fresh_series(index, length)`` →
    #: ``[length, D_in]``, an independent trajectory of the system (index ≥ 0 picks the
    #: initial condition), observed, noised and normalised like the test split
    fresh_series: Callable[[int, int], torch.Tensor] | None = None

    def seal_test(self) -> None:
        """From now on reading ``test`` or ``test_series`` raises :class:`TestSplitSealed`."""
        if not isinstance(self.test, _Sealed):
            self._unsealed = (self.test, self.test_series)
            self.test = _Sealed("test split")  # type: ignore[assignment]
            if self.test_series is not None:
                self.test_series = _Sealed("test series")  # type: ignore[assignment]

    def unseal_test(self) -> None:
        if isinstance(self.test, _Sealed):
            self.test, self.test_series = self._unsealed

    @property
    def test_sealed(self) -> bool:
        return isinstance(self.test, _Sealed)

    @property
    def dt(self) -> float | None:
        return self.metadata.get("dt")

    @property
    def lyapunov_exponent(self) -> float | None:
        return self.metadata.get("lyapunov_exponent")


def dataset_defaults(spec: DatasetSpec) -> dict[str, Any]:
    """All parameters a dataset takes: its own plus the core forecast options."""
    if spec.kind == "forecast":
        return {**FORECAST_OPTIONS, **spec.defaults}
    return dict(spec.defaults)


def dataset_param_docs(spec: DatasetSpec) -> dict[str, str]:
    """One line per parameter in :func:`dataset_defaults`."""
    if spec.kind == "forecast":
        return {**FORECAST_OPTION_DOCS, **spec.param_docs}
    return dict(spec.param_docs)


def cache_dir() -> Path:
    return Path(os.environ.get("DPBENCH_CACHE", Path.home() / ".cache" / "dpbench")) / "data"


def _cache_key(spec: DatasetSpec, params: Mapping[str, Any], seed: int) -> str:
    text = json.dumps(
        [spec.name, spec.version, spec.plugin, sorted(params.items()), seed], default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def generate_raw(spec: DatasetSpec, params: Mapping[str, Any], seed: int, use_cache: bool = True):
    """Call the plugin's generator (through the on-disk cache for trajectories)."""
    own = {k: params[k] for k in spec.defaults if k in params}
    own = {**spec.defaults, **own}
    path = cache_dir() / f"{spec.name}-{_cache_key(spec, own, seed)}.npz"
    if use_cache and spec.kind == "forecast" and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["metadata"]))
                extra = {k[5:]: z[k] for k in z.files if k.startswith("meta_")}
                return Trajectory(
                    values=z["values"], columns=list(z["columns"]),
                    exogenous=list(z["exogenous"]), metadata={**meta, **extra},
                )
        except Exception:  # a corrupt cache entry is regenerated
            pass
    raw = resolve(spec.generate, owner(spec))(own, seed)
    if spec.kind == "forecast":
        if not isinstance(raw, Trajectory):
            raise TypeError(f"dataset {spec.name!r} (plugin {spec.plugin!r}) must return a Trajectory")
        if use_cache:
            _write_cache(path, raw)
    elif not isinstance(raw, RecallSplits):
        raise TypeError(f"dataset {spec.name!r} (plugin {spec.plugin!r}) must return RecallSplits")
    return raw


def _write_cache(path: Path, traj: Trajectory) -> None:
    arrays = {k: v for k, v in traj.metadata.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in traj.metadata.items() if not isinstance(v, np.ndarray)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(
            tmp, values=traj.values, columns=np.array(traj.columns),
            exogenous=np.array(traj.exogenous, dtype=str),
            metadata=np.array(json.dumps(scalars, default=float)),
            **{f"meta_{k}": v for k, v in arrays.items()},
        )
        os.replace(tmp, path)  # atomic: concurrent writers never leave a torn file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _observed_columns(observe: str, traj: Trajectory, name: str) -> list[int]:
    states = [i for i, c in enumerate(traj.columns) if c not in traj.exogenous]
    if observe == "all":
        return states
    chosen: list[int] = []
    valid = [str(i) for i in range(len(states))] + [traj.columns[i] for i in states]
    for token in str(observe).split("+"):
        token = token.strip()
        if token.isdigit() and int(token) < len(states):
            idx = states[int(token)]
        elif token in traj.columns and traj.columns.index(token) in states:
            idx = traj.columns.index(token)
        else:
            raise UsageError(
                f"dataset {name!r}: observe={token!r} is not a component; valid: all, {', '.join(valid)}"
            )
        if idx not in chosen:
            chosen.append(idx)
    return chosen


def split_bounds(length: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` index ranges of train, val and test."""
    a = int(round(length * SPLIT_FRACTIONS[0]))
    b = a + int(round(length * SPLIT_FRACTIONS[1]))
    return [(0, a), (a, b), (b, length)]


def make_windows(series: torch.Tensor, window: int, horizon: int, targets: list[int]) -> Split:
    """All windows of ``series [L, D]`` with stride 1: ``x [n, window, D]``,
    ``y [n, horizon, len(targets)]`` (the next ``horizon`` steps of the target columns)."""
    n = series.shape[0] - window - horizon + 1
    if n <= 0:
        return Split(series.new_zeros(0, window, series.shape[1]), series.new_zeros(0, horizon, len(targets)))
    import torch

    idx = torch.arange(n)[:, None]
    x = series[idx + torch.arange(window)[None, :]]
    y = series[idx + window + torch.arange(horizon)[None, :]][..., targets]
    return Split(x.contiguous(), y.contiguous())


def _observed(spec: DatasetSpec, params: dict[str, Any], traj: Trajectory, seed: int
              ) -> tuple[np.ndarray, list[int], list[int]]:
    """Steps 1–2: the kept columns (exogenous first, then observed) with observation noise
    on the targets → ``(values [L, D_in], keep, targets)``."""
    values = np.asarray(traj.values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(traj.columns):
        raise TypeError(f"dataset {spec.name!r}: values must be [L, {len(traj.columns)}]")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"dataset {spec.name!r}: generated series has non-finite values")
    observed = _observed_columns(params["observe"], traj, spec.name)
    exo = [traj.columns.index(c) for c in traj.exogenous]
    keep = exo + observed
    values = values[:, keep]
    targets = list(range(len(exo), len(keep)))
    noise = float(params["noise"])
    if noise < 0:
        raise UsageError(f"dataset {spec.name!r}: noise={noise} must be >= 0")
    if noise > 0:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
        std = values.std(axis=0, keepdims=True)
        noisy = values + noise * std * rng.standard_normal(values.shape)
        values = np.where(np.isin(np.arange(len(keep)), targets)[None, :], noisy, values)
    return values, keep, targets


def fresh_seed(seed: int, index: int) -> int:
    """The generator seed of fresh trajectory ``index`` of data seed ``seed``."""
    return int(np.random.SeedSequence([seed, 0x5EED, index]).generate_state(1)[0])


@dataclass
class FreshSeries:
    """``(index, length) → [length, D_in]``: an independent trajectory of a dataset's system
    (seed :func:`fresh_seed`), observed and noised like the data, normalised with the
    *train* mean and std. Generated data is cached like any trajectory."""

    spec: DatasetSpec
    params: dict[str, Any]
    seed: int
    mean: np.ndarray
    std: np.ndarray
    use_cache: bool = True

    def __call__(self, index: int, length: int) -> torch.Tensor:
        import torch

        seed = fresh_seed(self.seed, index)
        raw = generate_raw(self.spec, {**self.params, "length": int(length)}, seed, use_cache=self.use_cache)
        values, _, _ = _observed(self.spec, self.params, raw, seed)
        return torch.as_tensor((values - self.mean) / self.std, dtype=torch.float32)


def prepare_forecast(spec: DatasetSpec, params: dict[str, Any], traj: Trajectory, seed: int,
                     use_cache: bool = True) -> TaskData:
    """Steps 1–5 of the module docstring."""
    import torch

    values, keep, targets = _observed(spec, params, traj, seed)
    columns = [traj.columns[i] for i in keep]
    window, horizon = int(params["window"]), int(params["horizon"])
    if window < 1 or horizon < 1:
        raise UsageError(f"dataset {spec.name!r}: window and horizon must be >= 1")
    bounds = split_bounds(len(values))
    train = values[bounds[0][0]:bounds[0][1]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    norm = torch.as_tensor((values - mean) / std, dtype=torch.float32)
    splits = {}
    for name, (lo, hi) in zip(SPLITS, bounds):
        splits[name] = make_windows(norm[lo:hi], window, horizon, targets)
        if len(splits[name]) == 0:
            raise UsageError(
                f"dataset {spec.name!r}: the {name} split ({hi - lo} steps) is shorter than "
                f"window+horizon={window + horizon}; raise 'length' or lower 'window'"
            )
    metadata = {**spec.metadata, **{k: v for k, v in traj.metadata.items()}}
    metadata.update(
        train_mean=mean.tolist(), train_std=std.tolist(), columns=columns,
        split_bounds=bounds, exogenous=list(traj.exogenous),
    )
    lo, hi = bounds[2]
    fresh = None
    if spec.independent_trajectories and traj.metadata.get("independent_trajectories", True):
        fresh = FreshSeries(spec, params, seed, mean, std, use_cache)
    return TaskData(
        name=spec.name, params=params, kind="forecast", loss="mse",
        train=splits["train"], val=splits["val"], test=splits["test"],
        input_size=len(keep), output_size=len(targets), output_steps=horizon,
        metadata=metadata, test_series=norm[lo:hi], target_index=targets, columns=columns,
        fresh_series=fresh,
    )


def prepare(spec: DatasetSpec, params: Mapping[str, Any], seed: int, use_cache: bool = True) -> TaskData:
    """Generate (or load) the dataset and return the trial-ready :class:`TaskData`.

    ``params`` must already be typed (see :func:`dpbench.params.typed_params`) and may omit
    defaults. ``seed`` is the trial seed; a dataset ``seed`` parameter >= 0 overrides it.
    """
    full = {**dataset_defaults(spec), **params}
    data_seed = int(full.get("seed", -1))
    data_seed = seed if data_seed < 0 else data_seed
    raw = generate_raw(spec, full, data_seed, use_cache=use_cache)
    if spec.kind == "forecast":
        return prepare_forecast(spec, full, raw, data_seed, use_cache)
    x_dim = int(raw.train.x.shape[-1])
    steps = int(raw.train.y.shape[1])
    return TaskData(
        name=spec.name, params=full, kind="recall", loss=raw.loss,
        train=raw.train, val=raw.val, test=raw.test, input_size=x_dim,
        output_size=raw.output_size, output_steps=steps,
        metadata={**spec.metadata, **raw.metadata}, baseline=raw.baseline,
    )


def describe(task: TaskData) -> str:
    """One line: name, params and shapes."""
    return (
        f"{task.name}[{format_params(task.params)}] {task.kind}: x {tuple(task.train.x.shape)} "
        f"-> y {tuple(task.train.y.shape)}"
    )

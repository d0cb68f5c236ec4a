"""Contract tests run over every built-in dataset: determinism, split disjointness,
train-only normalisation, documented metadata, ``prepare`` with small parameters."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpbench.data import (RecallSplits, Trajectory, generate_raw, prepare, split_bounds)
from dpbench.plugins import load_registry

REGISTRY = load_registry(disable_third_party=True)
BUILTIN = sorted(n for n, s in REGISTRY.datasets.items() if s.plugin.startswith("dpbench.datasets"))
REAL = {"sunspots", "santafe-laser"}

#: small parameters so that every dataset generates in well under a second
SMALL: dict[str, dict] = {
    "logistic": {"length": 400}, "henon": {"length": 400}, "lorenz": {"length": 400},
    "rossler": {"length": 400}, "mackey-glass": {"length": 400, "transient": 100.0},
    "delay-map": {"length": 400}, "narma10": {"length": 400}, "narma30": {"length": 400},
    "switching-delay": {"length": 400}, "kuramoto-sivashinsky": {"length": 300, "transient": 25.0},
    "sunspots": {}, "santafe-laser": {"length": 2000},
    "copy": {"lag": 10, "n_train": 40, "n_val": 10, "n_test": 10},
    "adding": {"lag": 20, "n_train": 40, "n_val": 10, "n_test": 10},
    "delayed-recall": {"lag": 8, "n_train": 40, "n_val": 10, "n_test": 10},
    "associative-recall": {"n_train": 40, "n_val": 10, "n_test": 10},
}


def _installed(name: str) -> bool:
    if name not in REAL:
        return True
    module = {"sunspots": "statsmodels", "santafe-laser": "reservoirpy"}[name]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


AVAILABLE = [n for n in BUILTIN if _installed(n)]


def _params(name: str) -> dict:
    spec = REGISTRY.dataset(name)
    return {**spec.defaults, **SMALL[name]}


def test_every_builtin_has_small_params():
    assert set(BUILTIN) == set(SMALL), "add small parameters for new datasets"
    expected = {"logistic", "henon", "lorenz", "rossler", "mackey-glass", "delay-map", "narma10",
                "narma30", "switching-delay", "kuramoto-sivashinsky", "sunspots", "santafe-laser",
                "copy", "adding", "associative-recall", "delayed-recall"}
    assert expected <= set(BUILTIN)


def _as_bytes(raw) -> bytes:
    if isinstance(raw, Trajectory):
        extra = [v.tobytes() for v in raw.metadata.values() if isinstance(v, np.ndarray)]
        return raw.values.tobytes() + b"".join(extra)
    parts = []
    for split in (raw.train, raw.val, raw.test):
        parts += [split.x.numpy().tobytes(), split.y.numpy().tobytes()]
    return b"".join(parts)


@pytest.mark.parametrize("name", AVAILABLE)
def test_same_seed_same_bytes(name):
    spec = REGISTRY.dataset(name)
    a = generate_raw(spec, _params(name), 3, use_cache=False)
    b = generate_raw(spec, _params(name), 3, use_cache=False)
    assert _as_bytes(a) == _as_bytes(b)
    if name not in REAL:  # fixed recordings do not depend on the seed
        c = generate_raw(spec, _params(name), 4, use_cache=False)
        assert _as_bytes(a) != _as_bytes(c)


@pytest.mark.parametrize("name", AVAILABLE)
def test_prepare_splits_and_normalisation(name):
    spec = REGISTRY.dataset(name)
    task = prepare(spec, SMALL[name], seed=1, use_cache=False)
    assert len(task.train) > 0 and len(task.val) > 0 and len(task.test) > 0
    assert torch.isfinite(task.train.x).all() and torch.isfinite(task.test.x).all()
    if spec.kind == "recall":
        raw = generate_raw(spec, _params(name), 1, use_cache=False)
        assert isinstance(raw, RecallSplits)
        rows = {s: {tuple(r) for r in getattr(task, s).x.flatten(1).numpy().round(6)} for s in ("train", "test")}
        assert not rows["train"] & rows["test"], "a test sequence also appears in training"
        assert task.baseline is not None and task.baseline > 0
        return
    traj = generate_raw(spec, _params(name), 1, use_cache=False)
    bounds = task.metadata["split_bounds"]
    assert bounds == split_bounds(len(traj.values))
    assert [b[0] for b in bounds[1:]] == [b[1] for b in bounds[:-1]]  # contiguous, disjoint
    window, horizon = task.params["window"], task.params["horizon"]
    for split, (lo, hi) in zip((task.train, task.val, task.test), bounds):
        assert len(split) == hi - lo - window - horizon + 1  # no window crosses a boundary
    keep = [traj.columns.index(c) for c in task.columns]
    train = traj.values[: bounds[0][1], keep]
    np.testing.assert_allclose(task.metadata["train_mean"], train.mean(axis=0), rtol=1e-10, atol=1e-12)
    std = np.where(train.std(axis=0) > 1e-12, train.std(axis=0), 1.0)
    np.testing.assert_allclose(task.metadata["train_std"], std, rtol=1e-10)
    first_test = (traj.values[bounds[2][0]: bounds[2][0] + window, keep] - train.mean(0)) / std
    np.testing.assert_allclose(task.test.x[0].numpy(), first_test, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_metadata_documented(name):
    spec = REGISTRY.dataset(name)
    assert set(spec.param_docs) == set(spec.defaults)
    assert spec.citation.strip() and spec.description.strip()
    if spec.kind == "forecast":
        assert spec.metadata["dt"] > 0
        assert "lyapunov_exponent" not in spec.metadata or spec.metadata["lyapunov_exponent"] > 0
        assert "length" in spec.defaults
        assert name in REAL or "equations" in spec.metadata
    assert spec.generate.__module__ and (spec.generate.__doc__ or spec.generate.__module__)
    module = __import__(spec.generate.__module__, fromlist=["_"])
    assert module.__doc__ and len(module.__doc__) > 200, "module docstring must cite the equations"


@pytest.mark.parametrize("name", [n for n in AVAILABLE if REGISTRY.dataset(n).kind == "forecast"])
def test_runtime_metadata_tracks_parameters(name):
    """A generated series reports its actual dt; changed system parameters drop the
    published exponent (it would be wrong)."""
    spec = REGISTRY.dataset(name)
    traj = generate_raw(spec, _params(name), 0, use_cache=False)
    meta = {**spec.metadata, **traj.metadata}
    assert meta["dt"] == pytest.approx(float(_params(name).get("dt", 1.0)))
    lyap = meta.get("lyapunov_exponent")
    assert lyap is None or (lyap > 0 and math.isfinite(lyap))


def test_changed_parameters_drop_the_lyapunov_exponent():
    spec = REGISTRY.dataset("lorenz")
    task = prepare(spec, {"length": 300, "rho": 35.0}, seed=0, use_cache=False)
    assert task.lyapunov_exponent is None
    assert task.metadata["parameters"]["rho"] == 35.0
    task = prepare(spec, {"length": 300}, seed=0, use_cache=False)
    assert task.lyapunov_exponent == pytest.approx(0.906)


def test_cache_round_trip_keeps_metadata_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path))
    spec = REGISTRY.dataset("switching-delay")
    first = generate_raw(spec, _params("switching-delay"), 5)
    again = generate_raw(spec, _params("switching-delay"), 5)  # from the cache
    assert any(tmp_path.rglob("*.npz"))
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_array_equal(first.metadata["regimes"], again.metadata["regimes"])

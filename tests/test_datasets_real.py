"""Real-data loaders (optional extra ``dpbench[real]``): the data when installed, and the
one-line error naming the extra when not."""
from __future__ import annotations

import sys

import pytest

from dpbench.cli import main
from dpbench.params import UsageError
from dpbench.plugins import load_registry

REGISTRY = load_registry(disable_third_party=True)


@pytest.mark.parametrize("name", ["sunspots", "santafe-laser"])
def test_missing_extra_names_it(name, monkeypatch, capsys):
    module = {"sunspots": "statsmodels.datasets.sunspots", "santafe-laser": "reservoirpy.datasets"}[name]
    parts = module.split(".")
    for i in range(len(parts)):  # a None entry in sys.modules makes the import fail
        monkeypatch.setitem(sys.modules, ".".join(parts[: i + 1]), None)
    spec = REGISTRY.dataset(name)
    assert spec.extra == "real"
    with pytest.raises(UsageError, match=r"pip install 'dpbench\[real\]'"):
        spec.generate(dict(spec.defaults), 0)
    assert main(["data", "export", name, "--out", "never.csv"]) == 2
    assert "dpbench[real]" in capsys.readouterr().err


def test_sunspots_values():
    pytest.importorskip("statsmodels")
    traj = REGISTRY.dataset("sunspots").generate({"length": 0}, 0)
    assert traj.values.shape == (309, 1) and traj.metadata["first_year"] == 1700.0
    assert traj.values[:4, 0].tolist() == [5.0, 11.0, 16.0, 23.0]
    assert REGISTRY.dataset("sunspots").generate({"length": 100}, 0).values.shape == (100, 1)


def test_santafe_values_are_bundled():
    pytest.importorskip("reservoirpy")
    traj = REGISTRY.dataset("santafe-laser").generate({"length": 0}, 0)
    assert traj.values.shape == (10093, 1)
    assert traj.values[:3, 0].tolist() == [86.0, 141.0, 95.0]
    with pytest.raises(UsageError, match="exceeds"):
        REGISTRY.dataset("santafe-laser").generate({"length": 20000}, 0)

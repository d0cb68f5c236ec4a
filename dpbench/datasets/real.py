"""Real measured series shipped inside Python packages (no download at run time).

* ``sunspots``: yearly mean sunspot number 1700–2008 (309 values), NOAA NGDC, as bundled
  by statsmodels (``statsmodels.datasets.sunspots``; Seabold & Perktold 2010, Proc. SciPy).
* ``santafe-laser``: Santa Fe competition data set A, a far-infrared NH₃ laser in a chaotic
  state, 10,093 samples (Weigend & Gershenfeld 1993, Time Series Prediction, Addison-Wesley;
  Hübner et al. 1989, Phys. Rev. A 40:6354), as bundled by reservoirpy
  (``reservoirpy.datasets.santafe_laser``; Trouvain et al. 2020, ICANN).

Both need the optional extra: ``pip install 'dpbench[real]'``; without it the generators
raise :class:`dpbench.params.UsageError` naming the extra. ``dt = 1`` (one year / one sample);
no Lyapunov exponent is claimed.
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from dpbench.data import Trajectory
from dpbench.datasets._common import need, positive_ints
from dpbench.hookspecs import hookimpl
from dpbench.params import UsageError
from dpbench.specs import DatasetSpec

EXTRA_HINT = "pip install 'dpbench[real]'"


def require(module: str, dataset: str):
    """Import ``module`` or raise a UsageError naming the ``real`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"dataset {dataset!r} needs the optional package {module.split('.')[0]!r}: "
            f"{EXTRA_HINT}"
        ) from None


def _truncate(name: str, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    (length,) = positive_ints(name, params, "length", minimum=0)
    need(name, length <= len(values), f"length={length} exceeds the {len(values)} samples")
    return values[:length] if length else values


def generate_sunspots(params: dict[str, Any], seed: int) -> Trajectory:
    """Yearly sunspot numbers ``[309, 1]`` (column sunspots; seed unused: fixed data)."""
    data = require("statsmodels.datasets.sunspots", "sunspots").load_pandas().data
    values = _truncate("sunspots", data["SUNACTIVITY"].to_numpy(dtype=np.float64)[:, None], params)
    years = data["YEAR"].to_numpy(dtype=np.float64)[: len(values)]
    return Trajectory(values=values, columns=["sunspots"],
                      metadata={"dt": 1.0, "first_year": float(years[0]), "units": "year"})


def generate_santafe(params: dict[str, Any], seed: int) -> Trajectory:
    """Santa Fe laser intensities ``[10093, 1]`` (column intensity; seed unused)."""
    datasets = require("reservoirpy.datasets", "santafe-laser")
    raw = np.asarray(datasets.santafe_laser(), dtype=np.float64).reshape(-1, 1)
    return Trajectory(values=_truncate("santafe-laser", raw, params), columns=["intensity"],
                      metadata={"dt": 1.0, "units": "sample"})


def _spec(name: str, description: str, citation: str, generate, source: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, kind="forecast", description=description, citation=citation,
        generate=generate, extra="real", defaults={"length": 0},
        param_docs={"length": "samples used from the start of the record (0: all)"},
        metadata={"dt": 1.0, "source": source, "real": True},
    )


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(_spec(
        "sunspots", "yearly sunspot numbers 1700-2008 (309 values, bundled with statsmodels)",
        "NOAA NGDC yearly sunspot numbers, as shipped in statsmodels (Seabold & Perktold 2010)",
        generate_sunspots, "statsmodels.datasets.sunspots"))
    register(_spec(
        "santafe-laser", "Santa Fe competition set A: chaotic NH3 laser, 10093 samples (reservoirpy)",
        "Weigend & Gershenfeld 1993 (Santa Fe data set A); Huebner et al. 1989, Phys. Rev. A 40:6354",
        generate_santafe, "reservoirpy.datasets.santafe_laser"))

"""The classical family: the field's own baselines, *fitted* in closed form (the fit
protocol, ``ModelSpec.fit``) rather than trained by gradient steps.

* ``persistence`` — ŷ(t+j) = x(t) (Murphy 1992, Wea. Forecasting 7:692);
* ``mean`` — the training mean of each target (climatology, ibid.);
* ``linear`` — ridge regression on the delay embedding, VAR(k) (Lütkepohl 2005, eq. 2.1.1);
* ``ngrc`` — next-generation reservoir computer / NVAR: k delays with skip s, constant +
  linear + quadratic (optionally cubic) monomials, ridge readout on the increment
  (Gauthier et al. 2021, Nat. Commun. 12:5564, eqs. 4-8);
* ``esn`` — leaky echo-state network, reservoirpy initialisers, ridge readout on
  [x(T); h(T)] (Jaeger 2001, GMD report 148; Lukoševičius 2012, LNCS 7700:659, eqs. 2-4).

Specs only; the models live in :mod:`dpbench.models._classical` (equations and shapes in
its docstrings), imported when a model is built, so listing the registry imports no torch.
Hyper-parameters in :data:`GRIDS` are chosen on the validation split by exhaustive search;
each default is its grid written ``"v1/v2/..."`` (a user value fixes it).
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._classical"
__getattr__ = forward_to(IMPL)

#: Validation-grid hyper-parameters per model (the defaults are these joined by "/").
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "linear": {"delays": (1, 2, 4, 8, 16), "alpha": (1e-8, 1e-6, 1e-4, 1e-2, 1.0)},
    "ngrc": {"delays": (2, 3, 5), "alpha": (1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)},
    "esn": {"alpha": (1e-9, 1e-7, 1e-5), "spectral_radius": (0.95,), "leak": (0.3, 1.0),
            "input_scaling": (0.05, 0.2)},
}
GRID_SEP = "/"


def grid_default(values: tuple[float, ...]) -> str:
    """``(1e-8, 1e-6)`` → ``"1e-08/1e-06"``: a grid as a scalar default."""
    return GRID_SEP.join(f"{v:g}" for v in values)


def _grid(name: str) -> dict[str, str]:
    return {k: grid_default(v) for k, v in GRIDS[name].items()}


_COMMON = dict(family="classical", fit=f"{IMPL}:fit", tasks=("forecast",))

SPECS = (
    ModelSpec(name="persistence", description="persistence: the last value persists",
              citation="Murphy 1992, Wea. Forecasting 7:692 (persistence reference forecast)",
              factory=f"{IMPL}:build_persistence", **_COMMON),
    ModelSpec(name="mean", description="climatology: the training mean of each target",
              citation="Murphy 1992, Wea. Forecasting 7:692 (climatology reference forecast)",
              factory=f"{IMPL}:build_mean", **_COMMON),
    ModelSpec(name="linear", description="VAR: ridge regression on the delay embedding",
              citation="Lutkepohl 2005, New Introduction to Multiple Time Series Analysis, eq. 2.1.1",
              factory=f"{IMPL}:build_linear", defaults={"skip": 1, **_grid("linear")}, **_COMMON),
    ModelSpec(name="ngrc", description="next-generation reservoir computer (NVAR): delays, quadratic monomials, ridge",
              citation="Gauthier et al. 2021, Nat. Commun. 12:5564, eqs. 4-8",
              factory=f"{IMPL}:build_ngrc",
              defaults={"skip": 1, "quadratic": True, "cubic": False, **_grid("ngrc")}, **_COMMON),
    ModelSpec(name="esn", description="leaky echo-state network, reservoirpy initialisers, ridge readout",
              citation="Jaeger 2001, GMD report 148; Lukosevicius 2012, LNCS 7700:659, eqs. 2-4",
              factory=f"{IMPL}:build_esn",
              defaults={"units": 400, "connectivity": 0.1, "input_connectivity": 1.0, "bias_scaling": 0.5,
                        "max_fit_windows": 3000, "reservoir_seed": -1, **_grid("esn")}, **_COMMON),
)


@hookimpl
def dpbench_register_models(register) -> None:
    for spec in SPECS:
        register(spec)

"""Hybrid numerical–neural model: a differentiable ODE with learnable physics plus a
neural residual in the vector field (seed §5(iii); Rackauckas et al. 2020).

Specs only; the modules live in :mod:`dpbench.models._hybrid`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.

Model metrics (table ``"model"``, filled by :func:`dpbench.models._hybrid.hybrid_metrics`):
for every physical parameter ``p`` of every system in :data:`PRIORS` (a fixed, prefix-free
set of names: one home, so ``dpbench compare`` can gate them),

* ``<p>_hat``: the learned value ``θ_0 exp(u)`` (descriptive, never gated);
* ``<p>_rel_err = |p̂ − p| / |p|`` against the value the data were generated with
  (lower is better, gated with a floor of :data:`REL_ERR_FLOOR`).

A system added to :data:`PRIORS` registers its parameters' metrics with it; two systems
sharing a parameter name share its metrics.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import MetricSpec, ModelSpec

IMPL = "dpbench.models._hybrid"
__getattr__ = forward_to(IMPL)

#: The systems the hybrid integrates: their physical parameters and the fixed prior
#: guesses ``θ_0`` training starts from (never the true values). Lorenz 1963: σ=10, ρ=28,
#: β=8/3 are the truth of the ``lorenz`` dataset.
PRIORS: dict[str, dict[str, float]] = {"lorenz": {"sigma": 5.0, "rho": 20.0, "beta": 2.0}}
#: Column-title symbols of the parameters (the name itself where missing).
SYMBOLS = {"sigma": "σ", "rho": "ρ", "beta": "β"}
#: Absolute tolerance floor of ``*_rel_err`` in ``dpbench compare``: one percent of the truth.
REL_ERR_FLOOR = 0.01
CITATION = "Lorenz 1963 (J. Atmos. Sci. 20:130) parameters; recovered as in Rackauckas et al. 2020"


def parameter_metrics() -> list[MetricSpec]:
    """``<p>_hat`` and ``<p>_rel_err`` for every parameter of :data:`PRIORS` (module docstring)."""
    names = dict.fromkeys(p for prior in PRIORS.values() for p in prior)
    out: list[MetricSpec] = []
    for i, p in enumerate(names):
        sym = SYMBOLS.get(p, p)
        out.append(MetricSpec(
            f"{p}_hat", f"{sym} learned", f"the hybrid's learned physical parameter {p} (theta_0 exp(u))",
            CITATION, higher_is_better=None, tasks=("forecast",), needs=("model",), gate="none",
            table="model", order=10 + 2 * i))
        out.append(MetricSpec(
            f"{p}_rel_err", f"{sym} rel. err", f"|{p}_hat - {p}| / |{p}| against the value the data were "
            "generated with", CITATION, higher_is_better=False, tasks=("forecast",), needs=("model",),
            tolerance=REL_ERR_FLOOR, gate="accuracy", table="model", order=11 + 2 * i))
    return out


@hookimpl
def dpbench_register_models(register) -> None:
    register(ModelSpec(
        name="hybrid", family="hybrid",
        description="differentiable ODE (torchdiffeq) with learnable physical parameters + MLP residual",
        citation="seed section 5(iii), refs [57]-[59]; Rackauckas et al. 2020 universal differential equations",
        factory=f"{IMPL}:build_hybrid", tasks=("forecast",), uses_metadata=True, metrics=f"{IMPL}:hybrid_metrics",
        defaults={"system": "lorenz", "residual": True, "drop_term": "none", "hidden": 32,
                  "solver": "rk4", "substeps": 2, "dt": 0.0},
        width="hidden",
    ))


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in parameter_metrics():
        register(spec)

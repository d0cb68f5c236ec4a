"""Hybrid numerical–neural model: a differentiable ODE with learnable physics plus a
neural residual in the vector field (seed §5(iii); Rackauckas et al. 2020).

Specs only; the modules live in :mod:`dpbench.models._hybrid`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._hybrid"
__getattr__ = forward_to(IMPL)


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

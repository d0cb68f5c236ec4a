"""The seed's differentiable "if": a learned gate mixes two learned branches.

Specs only; the modules live in :mod:`dpbench.models._branching`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._branching"
__getattr__ = forward_to(IMPL)


@hookimpl
def dpbench_register_models(register) -> None:
    register(ModelSpec(
        name="soft-switch", family="feedforward",
        description="differentiable if: sigmoid gate mixing two MLP branches, a*y(x)+(1-a)*z(x)",
        citation="seed section 2 (differentiable if); mixture of experts, Jacobs et al. 1991",
        factory=f"{IMPL}:build_soft_switch", defaults={"hidden": 64, "gate_hidden": 16, "delays": 0},
        width="hidden", diagnostics=("gate",), metrics=f"{IMPL}:gate_regime_metrics",
    ))

"""The seed's differentiable "if": a learned gate mixes two learned branches.

Specs only; the modules live in :mod:`dpbench.models._branching`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.

Model metric (table ``"model"``, filled by :func:`dpbench.models._branching.gate_regime_metrics`):
``gate_regime_corr``, the correlation ratio η ∈ [0, 1] between the test gates and the
regime at each predicted step (Pearson 1903); higher is better (the gate tracks the regime).
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import MetricSpec, ModelSpec

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


@hookimpl
def dpbench_register_metrics(register) -> None:
    register(MetricSpec(
        "gate_regime_corr", "gate-regime η", "correlation ratio between the soft-switch's gate and the "
        "regime of each predicted step (datasets with regimes)", "Pearson 1903 correlation ratio; seed section 2",
        higher_is_better=True, tasks=("forecast",), needs=("model",), tolerance=0.05, gate="accuracy",
        table="model", order=50))

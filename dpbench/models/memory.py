"""Memory networks: an external store of the input window read by attention (seed §3.2, §5(ii)).

Specs only; the modules live in :mod:`dpbench.models._memory`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._memory"
__getattr__ = forward_to(IMPL)


@hookimpl
def dpbench_register_models(register) -> None:
    register(ModelSpec(
        name="memn2n", family="memory",
        description="end-to-end memory network over the window's steps (K hops, adjacent tying)",
        citation="Sukhbaatar et al. 2015, End-to-end memory networks, eq. 1-2 and section 2.2; seed ref. [7]",
        factory=f"{IMPL}:build_memn2n", defaults={"embed": 64, "hops": 3, "relu_half": True}, width="embed",
        diagnostics=("attention", "attention_hops"),
    ))
    register(ModelSpec(
        name="mtnet", family="memory",
        description="memory time-series network: attention over encoded past blocks + AR term",
        citation="Chang et al. 2018, A memory-network based solution for multivariate time-series forecasting, section 3; seed ref. [55]",
        factory=f"{IMPL}:build_mtnet", defaults={"hidden": 32, "block": 8, "kernel": 3, "ar": 8}, width="hidden",
        diagnostics=("attention",),
    ))

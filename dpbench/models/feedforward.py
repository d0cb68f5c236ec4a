"""Time-delay feed-forward network: an MLP on the last ``delays`` input steps.

Specs only; the modules live in :mod:`dpbench.models._feedforward`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._feedforward"
__getattr__ = forward_to(IMPL)


@hookimpl
def dpbench_register_models(register) -> None:
    register(ModelSpec(
        name="fnn", family="feedforward",
        description="time-delay MLP on the flattened input window",
        citation="seed eq. 1 and section 4(i); Lapedes & Farber 1987",
        factory=f"{IMPL}:build_fnn", defaults={"hidden": 64, "layers": 2, "delays": 0}, width="hidden",
    ))

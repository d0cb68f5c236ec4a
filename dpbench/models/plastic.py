"""Differentiable plasticity: a recurrent network whose weights keep a Hebbian trace.

Specs only; the modules live in :mod:`dpbench.models._plastic`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._plastic"
__getattr__ = forward_to(IMPL)


@hookimpl
def dpbench_register_models(register) -> None:
    register(ModelSpec(
        name="plastic-rnn", family="plastic",
        description="RNN with learned Hebbian/Oja plastic weights (differentiable plasticity)",
        citation="Miconi, Stanley & Clune 2018, Differentiable plasticity (ICML); seed eq. 12-13",
        factory=f"{IMPL}:build_plastic_rnn", defaults={"hidden": 64, "rule": "hebb", "eta": 0.1},
        width="hidden", diagnostics=("trace_norm",),
    ))

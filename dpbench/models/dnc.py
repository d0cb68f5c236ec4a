"""Differentiable Neural Computer (Graves et al. 2016, Nature 538, Methods; seed §3.2, ref. [8]).

Specs only; the modules live in :mod:`dpbench.models._dnc`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._dnc"
__getattr__ = forward_to(IMPL)


@hookimpl
def dpbench_register_models(register) -> None:
    register(ModelSpec(
        name="dnc", family="memory",
        description="Differentiable Neural Computer: LSTM controller + external memory (dpbench.ops)",
        citation="Graves et al. 2016, Hybrid computing using a neural network with dynamic external memory, Methods; seed ref. [8]",
        factory=f"{IMPL}:build_dnc",
        defaults={"hidden_size": 64, "memory_slots": 16, "word_size": 8, "read_heads": 2,
                  "impl": "reference", "usage_stop_gradient": False, "checkpoint": 0,
                  "cuda_graph": False, "fused_sequence": True},
        width="hidden_size", diagnostics=("read_weights", "write_weights", "usage"),
    ))

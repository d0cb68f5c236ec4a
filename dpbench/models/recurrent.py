"""Recurrent baselines: Elman RNN, LSTM and GRU on torch's fused ``nn.RNN/LSTM/GRU``.

Specs only; the modules live in :mod:`dpbench.models._recurrent`, imported when a model is
built, so listing the registry imports no torch. Other names resolve there.
"""
from __future__ import annotations

from dpbench._lazy import forward_to
from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

IMPL = "dpbench.models._recurrent"
__getattr__ = forward_to(IMPL)


@hookimpl
def dpbench_register_models(register) -> None:
    common = dict(family="recurrent", defaults={"hidden": 64, "layers": 1}, width="hidden")
    register(ModelSpec(
        name="rnn", description="Elman RNN (tanh), torch nn.RNN",
        citation="Elman 1990, Finding structure in time; seed eq. 2-3",
        factory=f"{IMPL}:build_rnn", **common,
    ))
    register(ModelSpec(
        name="lstm", description="LSTM, torch nn.LSTM (cuDNN / oneDNN)",
        citation="Hochreiter & Schmidhuber 1997, Long short-term memory",
        factory=f"{IMPL}:build_lstm", **common,
    ))
    register(ModelSpec(
        name="gru", description="GRU, torch nn.GRU (cuDNN / oneDNN)",
        citation="Cho et al. 2014, Learning phrase representations using RNN encoder-decoder",
        factory=f"{IMPL}:build_gru", **common,
    ))

"""One model and one dataset, each honouring the contracts in :mod:`dpbench.specs`.

Model ``example-mlp``: the whole input window, flattened, through a two-layer perceptron
``x^{l+1} = f(W^l x^l)`` (seed eq. 1, with ``f = tanh`` and a linear last layer) to all
``output_steps × output_size`` outputs at once. Input ``[B, T, D_in]`` → ``[B, T_out, D_out]``.

Dataset ``example-oscillator``: the undamped harmonic oscillator ``x'' = -ω² x``, sampled
from its exact solution ``x = A cos(ω t + φ)``, ``v = -A ω sin(ω t + φ)`` (e.g. Strogatz
2015, Nonlinear Dynamics and Chaos, §5.1) with a seeded phase ``φ``; the energy
``v² + ω² x²`` is conserved exactly (the tests check it).

The model's code lives in :mod:`dpbench_example.model` and is named by a
``"module:attr"`` string, so loading this plugin (``dpbench list``) imports no torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dpbench import hookimpl
from dpbench.data import Trajectory
from dpbench.specs import DatasetSpec, ModelSpec


def oscillator(params: dict[str, Any], seed: int) -> Trajectory:
    """``[length, 2]`` samples (columns ``x``, ``v``) of the exact oscillator solution."""
    length, omega, dt = int(params["length"]), float(params["omega"]), float(params["dt"])
    if length < 2 or omega <= 0 or dt <= 0:
        raise ValueError(f"example-oscillator: need length >= 2, omega > 0, dt > 0; got {params}")
    phase = np.random.default_rng(seed).uniform(0.0, 2.0 * np.pi)
    t = np.arange(length) * dt
    x = params["amplitude"] * np.cos(omega * t + phase)
    v = -params["amplitude"] * omega * np.sin(omega * t + phase)
    return Trajectory(values=np.stack([x, v], axis=1), columns=["x", "v"],
                      metadata={"dt": dt, "omega": omega})


MODEL = ModelSpec(
    name="example-mlp", family="feedforward",
    description="template plugin: flattened window through a tanh MLP (seed eq. 1)",
    citation="seed eq. 1 (multilayer perceptron)",
    factory="dpbench_example.model:WindowMLP", defaults={"hidden": 32}, width="hidden",
)

DATASET = DatasetSpec(
    name="example-oscillator", kind="forecast",
    description="template plugin: harmonic oscillator x'' = -w^2 x, exact solution",
    citation="Strogatz 2015, Nonlinear Dynamics and Chaos, sec. 5.1",
    generate=oscillator,
    defaults={"length": 2000, "omega": 1.0, "dt": 0.1, "amplitude": 1.0},
    param_docs={"length": "samples", "omega": "angular frequency ω", "dt": "sampling step",
                "amplitude": "amplitude A"},
    metadata={"dt": 0.1, "equations": "x'' = -omega^2 x"},
)


@hookimpl
def dpbench_register_models(register) -> None:
    register(MODEL)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DATASET)

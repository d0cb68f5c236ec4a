"""The plugin module named by the ``dpbench`` entry point: registers the ``dysts`` dataset.

It imports neither dysts nor numerical code: the generator is a ``"module:attr"`` string
resolved on first use, so ``dpbench list`` stays fast.
"""
from __future__ import annotations

from dpbench import hookimpl
from dpbench.specs import DatasetSpec

DYSTS = DatasetSpec(
    name="dysts",
    kind="forecast",
    description="any of the dysts database's chaotic flows: dysts:Lorenz, dysts:Rossler, dysts:Chua, ...",
    citation="Gilpin 2021, Chaos as an interpretable benchmark for forecasting (NeurIPS D&B); "
             "equations: the paper each system cites",
    generate="dpbench_dysts.generate:generate",
    defaults={"system": "Lorenz", "length": 4000, "sampling": "period", "points": 30.0,
              "transient": 20.0, "bound": 1e6},
    param_docs={
        "system": "dysts system name (python -m dpbench_dysts.survey --list); sweep with [A,B]",
        "length": "samples after the transient",
        "sampling": "'period': points per dysts period; 'lyapunov': points per Lyapunov time",
        "points": "samples per period or per Lyapunov time (sets dt)",
        "transient": "discarded transient, in periods",
        "bound": "fail when any |value| reaches this (the trajectory escaped)",
    },
    metadata={"equations": "dysts (Gilpin 2021); per-system dt, lyapunov_exponent, parameters "
                           "and period are in each trajectory's metadata"},
    version="1",
    positional="system",
    # another seed: dysts' initial condition with another perturbation and 20 periods of
    # transient, i.e. an independent trajectory (VPT and long-term statistics use them)
    independent_trajectories=True,
)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DYSTS)

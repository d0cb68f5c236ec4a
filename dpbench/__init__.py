"""dpbench: does attention, external memory or plasticity beat an LSTM on your dynamical system?

The public API for plugin authors (:data:`hookimpl`, :class:`ModelSpec`,
:class:`DatasetSpec`, :class:`MetricSpec`, the data types :class:`Trajectory`,
:class:`RecallSplits`, :class:`Split`, :class:`TaskData`, :class:`SpecError`, :data:`FAMILIES`,
the conformance kit) and for notebooks (:func:`run`, :func:`load`, :class:`Results`). Names
are imported on first access, so ``import dpbench`` (and ``dpbench --version``) imports
neither pluggy nor torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "hookimpl": "dpbench.hookspecs",
    "ModelSpec": "dpbench.specs",
    "DatasetSpec": "dpbench.specs",
    "MetricSpec": "dpbench.specs",
    "SpecError": "dpbench.specs",
    "FAMILIES": "dpbench.specs",
    "TASK_KINDS": "dpbench.specs",
    "Trajectory": "dpbench.data",
    "RecallSplits": "dpbench.data",
    "Split": "dpbench.data",
    "TaskData": "dpbench.data",
    "UsageError": "dpbench.params",
    "check_model_spec": "dpbench.testing",
    "check_dataset_spec": "dpbench.testing",
    "run": "dpbench.api",
    "load": "dpbench.api",
    "Results": "dpbench.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dpbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""dpbench: does attention, external memory or plasticity beat an LSTM on your dynamical system?

The public API for plugin authors and library users: everything the plugin guide's
examples name is importable from ``dpbench``. The data types (which import torch) are
loaded on first access, so ``import dpbench`` stays light.
"""
__version__ = "0.1.0"

from typing import Any  # noqa: E402

from dpbench.hookspecs import hookimpl  # noqa: E402
from dpbench.specs import FAMILIES, TASK_KINDS, DatasetSpec, ModelSpec, SpecError  # noqa: E402

#: Public names loaded lazily: name -> module that defines it.
_LAZY = {
    "Trajectory": "dpbench.data", "RecallSplits": "dpbench.data", "Split": "dpbench.data",
    "TaskData": "dpbench.data", "UsageError": "dpbench.params",
    "check_model_spec": "dpbench.testing", "check_dataset_spec": "dpbench.testing",
}

__all__ = ["__version__", "hookimpl", "ModelSpec", "DatasetSpec", "SpecError", "FAMILIES",
           "TASK_KINDS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dpbench' has no attribute {name!r}")

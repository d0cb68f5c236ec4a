"""dpbench: does attention, external memory or plasticity beat an LSTM on your dynamical system?

The public API for plugin authors and library users.
"""
__version__ = "0.1.0"

from dpbench.hookspecs import hookimpl  # noqa: E402
from dpbench.specs import DatasetSpec, MetricSpec, ModelSpec  # noqa: E402

__all__ = ["__version__", "hookimpl", "ModelSpec", "DatasetSpec", "MetricSpec"]

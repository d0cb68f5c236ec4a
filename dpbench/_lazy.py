"""Module attributes imported on first access (PEP 562), so that light modules can name
heavy ones (torch models) without importing them when the registry is only listed."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def forward_to(module_name: str) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that resolves unknown names in ``module_name``.

    ``dpbench/models/dnc.py`` declares the spec and sets ``__getattr__ = forward_to(
    "dpbench.models._dnc")``: ``from dpbench.models.dnc import DNC`` still works, and
    importing ``dpbench.models.dnc`` alone imports no torch.
    """
    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module(module_name), name)

    return __getattr__

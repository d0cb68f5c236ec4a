"""The plugin seam: dpbench's pluggy hook specifications.

A plugin is any module (or object) with functions named after these specs and marked
with :data:`hookimpl`. Built-in models, datasets and metrics register through the very same hooks
as third-party packages, which are found through the ``dpbench`` entry-point group.
"""
from __future__ import annotations

from typing import Callable

import pluggy

from dpbench.specs import DatasetSpec, MetricSpec, ModelSpec

PROJECT = "dpbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def dpbench_register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register model plugins by calling ``register(ModelSpec(...))`` once per model."""


@hookspec
def dpbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register dataset plugins by calling ``register(DatasetSpec(...))`` once per dataset."""


@hookspec
def dpbench_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register metric plugins by calling ``register(MetricSpec(...))`` once per metric."""

"""Benchmarks (pytest-benchmark): opt-in with ``pytest tests/benchmarks --benchmark-only``.

The default ``pytest`` run passes ``--benchmark-skip`` (pyproject), which marks every test
here skipped at collection, before any fixture runs. Keep module-level imports light.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def forecast_task(registry):
    """A small Lorenz forecasting task shared by the training-step benchmarks:
    windows ``[B, 16, 3]`` → next state ``[B, 1, 3]``."""
    from dpbench.data import prepare

    return prepare(registry.dataset("lorenz"), {"length": 600, "window": 16}, 0)

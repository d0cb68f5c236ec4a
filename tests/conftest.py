"""Shared fixtures: the loaded registry, and an isolated data cache per test session."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("DPBENCH_DISABLE_PLUGINS", "0")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated data goes to a per-session cache, never the user's."""
    os.environ["DPBENCH_CACHE"] = str(tmp_path_factory.mktemp("dpbench-cache"))
    yield


@pytest.fixture(scope="session")
def registry():
    from dpbench.plugins import load_registry

    return load_registry()

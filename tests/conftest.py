"""Shared fixtures: the loaded registry, and an isolated data cache per test session."""
from __future__ import annotations

import os

# The models under test run many tiny ops per time step; one intra-op thread is faster for
# them and immune to OpenMP spin contention on small shared CI machines (subprocesses too).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated data goes to a per-session cache, never the user's."""
    os.environ["DPBENCH_CACHE"] = str(tmp_path_factory.mktemp("dpbench-cache"))
    yield


@pytest.fixture(scope="session")
def registry():
    from dpbench.plugins import load_registry

    return load_registry()

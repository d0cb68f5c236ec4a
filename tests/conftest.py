"""Shared fixtures: the loaded registry, and an isolated data cache per test session."""
from __future__ import annotations

import os

# The models under test run many tiny ops per time step; one intra-op thread is faster for
# them and immune to OpenMP spin contention on small shared CI machines (subprocesses too).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def skip_unless_extra(extra: str) -> None:
    """Skip the calling test, naming the install command, when an optional extra of dpbench
    (``real``, ``ray``, ...) is not fully installed. The README's test command installs only
    ``[test]``: every test that needs more must call this (or ``pytest.importorskip``)."""
    from dpbench.extras import install_hint, missing_packages

    missing = missing_packages(extra)
    if missing:
        pytest.skip(f"needs {install_hint(extra)} (missing: {', '.join(missing)})")


def skip_unless_installed(dist: str) -> None:
    """Skip unless the distribution ``dist`` (e.g. a first-party plugin package) is installed."""
    from importlib import metadata

    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        pytest.skip(f"needs pip install -e plugins/{dist}")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated data goes to a per-session cache, never the user's."""
    os.environ["DPBENCH_CACHE"] = str(tmp_path_factory.mktemp("dpbench-cache"))
    yield


@pytest.fixture(scope="session")
def registry():
    from dpbench.plugins import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def fused_kernels():
    """The fused DNC extension, loaded (or JIT-built, ~1 min) once; skips without a compiler."""
    import shutil

    from dpbench.ops import _loader

    if shutil.which(os.environ.get("CXX", "c++")) is None:
        pytest.skip("no C++ compiler: the fused kernels cannot be built here")
    status = _loader.load()
    assert status.available, status.reason

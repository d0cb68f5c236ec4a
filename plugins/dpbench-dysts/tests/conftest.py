"""Generated data goes to a per-session cache, never the user's."""
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["DPBENCH_CACHE"] = str(tmp_path_factory.mktemp("dpbench-cache"))
    yield

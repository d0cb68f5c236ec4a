"""The ahead-of-time CMake build produces a library that dpbench loads first and that
matches the reference (the JIT path is covered by test_dnc_kernels.py)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")

CHECK = """
import json, torch
from dpbench.ops import _loader
from dpbench.ops.dnc_check import compare_with_reference, within_tolerance
status = _loader.fused_status("cpu")
res = compare_with_reference((3, 7, 4, 2), torch.float64, "cpu", seed=1)
print(json.dumps({"source": status.source, "bad": within_tolerance(res, torch.float64)}))
"""


def test_cmake_library_is_loaded_first_and_matches_the_reference(tmp_path):
    build, out = tmp_path / "build", tmp_path / "out"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), f"-DDPBENCH_PREBUILT_DIR={out}"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    subprocess.run(["cmake", "--install", str(build)], check=True, capture_output=True)
    lib = out / "libdpbench_dnc.so"
    assert lib.exists()
    env = {**os.environ, "DPBENCH_EXT_PATH": str(lib), "DPBENCH_EXT_CACHE": str(tmp_path / "nojit")}
    result = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True)
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc == {"source": "prebuilt", "bad": []}
    assert not (tmp_path / "nojit").exists() or not any((tmp_path / "nojit").iterdir()), "no JIT build happened"

"""A wheel carries the fused kernels' sources, and an installed (non-editable) dpbench builds
and uses them: ``setup.py`` copies ``csrc/`` to ``dpbench/ops/_csrc/``, where the loader looks
when there is no repository around it."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip().splitlines()[-1:]}")
    return next(out.glob("dpbench-*.whl"))


def test_wheel_ships_every_kernel_source(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.name for p in (ROOT / "csrc" / "dnc").iterdir() if p.is_file()}
    assert sources and {f"dpbench/ops/_csrc/dnc/{n}" for n in sources} <= names


def test_installed_package_builds_the_fused_op_from_its_own_copy(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import dpbench, torch\n"
            "from dpbench.ops import _loader, dnc_access_step\n"
            "from dpbench.ops.dnc_check import rollout, random_interface\n"
            "print(_loader.source_dir())\n"
            "print(_loader.fused_status('cpu').available)\n"
            "states, _, gen = rollout(2, 5, 3, 2, steps=1)\n"
            "x = random_interface(2, 3, 2, gen)\n"
            "a = dnc_access_step(states[-1], x, impl='fused')[1]\n"
            "b = dnc_access_step(states[-1], x, impl='reference')[1]\n"
            "print(float((a - b).abs().max()))\n")
    env = {k: v for k, v in os.environ.items() if k != "DPBENCH_CSRC"}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    source, available, err = out.stdout.split()
    assert Path(source) == site / "dpbench" / "ops" / "_csrc" / "dnc"
    assert available == "True" and float(err) < 1e-10

"""The environment block every run records: where and with what it ran."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from dpbench import __version__


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU feature flags that change float rounding or speed of torch's kernels (oneDNN/MKL pick
#: code paths by them): recorded so ``dpbench compare`` can tell two machines apart.
ISA_FLAG_PREFIXES = ("avx", "fma", "amx", "sse4_2", "f16c")


def cpu_flags() -> list[str]:
    """The ISA flags of :data:`ISA_FLAG_PREFIXES` that ``/proc/cpuinfo`` lists for the
    first CPU (``avx2``, ``avx512f``, ``avx512_bf16``, ``amx_tile``, ...), sorted; ``[]``
    where there is no ``/proc/cpuinfo``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split() if f.startswith(ISA_FLAG_PREFIXES))
    except OSError:
        pass
    return []


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (``os.getloadavg``), rounded; None where
    the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def busy_warning(load: list[float] | None, cores: int | None) -> str | None:
    """One line when the 1-minute load is already ≥ the number of cores, else None."""
    if not load or not cores or load[0] < cores:
        return None
    return (f"dpbench: warning: the machine is busy before the first trial (load average {load[0]:.1f} "
            f"on {cores} cores); throughput figures will be noisy, least so with --threads 1 (docs/ci.md)")


def environment() -> dict[str, Any]:
    """Versions, git state, devices and thread settings of this process."""
    sha = _git("rev-parse", "HEAD")
    dirty = None
    if sha:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    cuda = torch.cuda.is_available()
    return {
        "dpbench_version": __version__,
        "git_sha": sha,
        "git_dirty": dirty,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "load_start": load_average(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "devices": {"cpu": cpu_name(), **({"cuda": torch.cuda.get_device_name(0)} if cuda else {})},
    }

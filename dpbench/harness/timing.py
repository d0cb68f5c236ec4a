"""Device-synchronised timers and peak-memory probes."""
from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from pathlib import Path

import torch


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@contextmanager
def timed(device: str, out: list[float]):
    """Append the wall time (s) of the block to ``out``, synchronising the device."""
    synchronize(device)
    start = time.perf_counter()
    yield
    synchronize(device)
    out.append(time.perf_counter() - start)


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_memory(device: str) -> None:
    """Start a new peak-memory window: CUDA allocator peak, or the process's RSS
    high-water mark (Linux: writing 5 to /proc/self/clear_refs resets VmHWM)."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_memory_mb(device: str) -> float:
    """Peak memory since :func:`reset_peak_memory`: ``torch.cuda.max_memory_allocated``
    for CUDA; for CPU the process RSS high-water mark (VmHWM; ``ru_maxrss`` where
    /proc is unavailable — then it is the whole process lifetime's peak)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

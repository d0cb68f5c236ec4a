"""Timing and peak memory of the DNC access step over a sequence: reference eager,
``torch.compile(reference)`` and the fused kernels, measured side by side in one run.

A *forward* run is T steps under ``torch.no_grad``; a *train* run is T steps with gradients
w.r.t. every interface tensor and a backward from the summed reads. Times are medians over
``repeats`` runs after one warm-up (compiled: after compiling). Memory:

* ``saved_mb`` — bytes of distinct tensor storages autograd keeps for the backward (a
  ``saved_tensors_hooks`` count; exact, noise-free);
* ``peak_mb`` (CPU) — resident-set high-water mark above the starting RSS of a fresh
  subprocess (``/proc/self/clear_refs`` ← 5, then ``VmHWM``; glibc's mmap threshold pinned so
  freed blocks are returned); (CUDA) ``torch.cuda.max_memory_allocated`` above the start.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from dpbench.ops import DNCInterface, dnc_access_step, initial_state
from dpbench.ops.dnc_check import random_interface

IMPLS = ("reference", "compiled", "fused")


@dataclass
class Config:
    batch: int
    slots: int
    word: int = 32
    heads: int = 4
    steps: int = 64


@dataclass
class Row:
    """One (config, impl, mode) measurement; times in ms for the whole sequence."""

    config: dict
    impl: str
    mode: str
    median_ms: Optional[float] = None
    samples_ms: list = field(default_factory=list)
    saved_mb: Optional[float] = None
    peak_mb: Optional[float] = None
    error: str = ""


def make_interfaces(cfg: Config, device: str, grad: bool, seed: int = 0) -> list[DNCInterface]:
    """T random float32 post-activation interfaces (the same for every implementation)."""
    gen = torch.Generator().manual_seed(seed)
    return [DNCInterface(*[t.to(device).requires_grad_(grad) for t in random_interface(
        cfg.batch, cfg.word, cfg.heads, gen, torch.float32)]) for _ in range(cfg.steps)]


def step_function(impl: str) -> Callable:
    if impl == "compiled":
        from dpbench.ops.dnc_reference import dnc_access_step as ref

        return torch.compile(ref, dynamic=False)
    return lambda s, x: dnc_access_step(s, x, impl=impl)


def run_sequence(step: Callable, cfg: Config, xs: list[DNCInterface], device: str,
                 train: bool) -> None:
    state = initial_state(cfg.batch, cfg.slots, cfg.word, cfg.heads, device=device)
    with torch.set_grad_enabled(train):
        total = 0.0
        for x in xs:
            state, reads = step(state, x)
            total = total + reads.sum()
        if train:
            total.backward()
    if device == "cuda":
        torch.cuda.synchronize()


def saved_bytes(step: Callable, cfg: Config, xs: list[DNCInterface], device: str) -> int:
    """Bytes of distinct storages autograd saves for one training sequence."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        state = initial_state(cfg.batch, cfg.slots, cfg.word, cfg.heads, device=device)
        total = 0.0
        for x in xs:
            state, reads = step(state, x)
            total = total + reads.sum()
    return sum(seen.values())


def time_runs(step: Callable, cfg: Config, xs, device: str, train: bool, repeats: int) -> list:
    run_sequence(step, cfg, xs, device, train)   # warm-up (and compile)
    samples = []
    for _ in range(repeats):
        for x in xs:
            for t in x:
                t.grad = None
        start = time.perf_counter()
        run_sequence(step, cfg, xs, device, train)
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def peak_memory_mb(impl: str, cfg: Config, device: str) -> float:
    """Peak memory of one training sequence, measured in a fresh subprocess."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    args = [sys.executable, "-m", "dpbench.ops.dnc_bench", impl, device, json.dumps(asdict(cfg))]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    return float(out.stdout.strip().splitlines()[-1])


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _probe(impl: str, device: str, cfg: Config) -> float:
    """Subprocess body: warm up, reset the high-water mark, run one training sequence."""
    step = step_function(impl)
    xs = make_interfaces(cfg, device, grad=True)
    run_sequence(step, cfg, xs, device, train=True)
    for x in xs:
        for t in x:
            t.grad = None
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run_sequence(step, cfg, xs, device, train=True)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kb("VmRSS")
    run_sequence(step, cfg, xs, device, train=True)
    return (_status_kb("VmHWM") - base) / 1024


def measure(cfg: Config, impls, device: str, repeats: int, memory: bool,
            log: Optional[Callable[[str], None]] = None) -> list[Row]:
    """Time (and count memory of) every impl × mode for one config; ``log`` gets progress."""
    rows = []
    for impl in impls:
        try:
            step = step_function(impl)
        except Exception as err:  # noqa: BLE001 - report, keep measuring the others
            rows += [Row(asdict(cfg), impl, m, error=str(err).splitlines()[0])
                     for m in ("forward", "train")]
            continue
        for mode in ("forward", "train"):
            row = Row(asdict(cfg), impl, mode)
            if log:
                log(f"B={cfg.batch} N={cfg.slots} {impl} {mode}")
            try:
                xs = make_interfaces(cfg, device, grad=mode == "train")
                row.samples_ms = time_runs(step, cfg, xs, device, mode == "train", repeats)
                row.median_ms = statistics.median(row.samples_ms)
                if mode == "train" and impl != "compiled":   # hooks do not see inside
                    row.saved_mb = saved_bytes(step, cfg, xs, device) / 2**20   # compiled graphs
                if mode == "train" and memory:
                    row.peak_mb = peak_memory_mb(impl, cfg, device)
            except Exception as err:  # noqa: BLE001
                row.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            rows.append(row)
    return rows


def link_traffic(cfg: Config, dtype_bytes: int = 4) -> dict:
    """Link-matrix bytes per step: the minimum any implementation moves, and what ours move."""
    nn = cfg.batch * cfg.slots * cfg.slots * dtype_bytes
    return {"forward_min_bytes": 2 * nn, "forward_kernel_bytes": 3 * nn,
            "backward_min_bytes": 3 * nn, "backward_kernel_bytes": 5 * nn}


if __name__ == "__main__":
    print(_probe(sys.argv[1], sys.argv[2], Config(**json.loads(sys.argv[3]))))

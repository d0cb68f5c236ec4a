"""Timing and peak memory of the DNC access step over a sequence: reference eager,
``torch.compile(reference)`` and the fused kernels, measured side by side in one run.

A *forward* run is T steps under ``torch.no_grad``; a *train* run is T steps with gradients
w.r.t. every interface tensor and a backward from the summed reads. Suffixes: ``+ckpt`` runs
the training sequence in checkpointed chunks of ≈√T steps (:func:`_checkpointed_chunks`),
``+graph`` replays the whole sequence from a CUDA graph (:func:`time_graph`). Times are
medians over ``repeats`` runs after one warm-up (compiled: after compiling). Memory:

* ``saved_mb`` — bytes of distinct tensor storages autograd keeps for the backward (a
  ``saved_tensors_hooks`` count; exact, noise-free);
* ``peak_mb`` (CPU) — resident-set high-water mark above the starting RSS of a fresh
  subprocess (``/proc/self/clear_refs`` ← 5, then ``VmHWM``; glibc's mmap threshold pinned so
  freed blocks are returned); (CUDA) ``torch.cuda.max_memory_allocated`` above the start,
  in-process.

On CUDA, :func:`copy_bandwidth` measures the device-to-device copy rate that
:func:`link_traffic`'s bytes are divided by for the bandwidth floor. On CPU, where one core's
streaming rate depends on the working set and on cache sizes, :func:`link_stream_floor`
replays the link matrices' access pattern of a training sequence with plain ATen copies and
adds instead, in the same run.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from dpbench.ops import DNCInterface, DNCState, dnc_access_step, initial_state
from dpbench.ops.dnc_check import random_interface

IMPLS = ("reference", "compiled", "fused", "reference+ckpt", "fused+ckpt", "reference+graph",
         "fused+graph")
GRAPH = "+graph"   # suffix: the whole sequence captured in one CUDA graph and replayed
CKPT = "+ckpt"     # suffix: chunks of ≈√T steps recomputed in the backward (checkpointing)


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
    """One access step of ``impl`` (suffixes stripped); ``+ckpt`` marks it for checkpointing."""
    base = impl.removesuffix(GRAPH).removesuffix(CKPT)
    if base == "compiled":
        from dpbench.ops.dnc_reference import dnc_access_step as ref

        return torch.compile(ref, dynamic=False)

    def step(s, x):
        return dnc_access_step(s, x, impl=base)

    step.checkpointed = impl.endswith(CKPT)
    return step


def _run_steps(step: Callable, state: DNCState, xs: list[DNCInterface]):
    total = 0.0
    for x in xs:
        state, reads = step(state, x)
        total = total + reads.sum()
    return state, total


def _runner(step: Callable, train: bool) -> Callable:
    """How a sequence runs: in checkpointed chunks for a ``+ckpt`` step while training."""
    return _checkpointed_chunks if train and getattr(step, "checkpointed", False) else _run_steps


def _checkpointed_chunks(step: Callable, state: DNCState, xs: list[DNCInterface]):
    """The steps in chunks of ≈√T under ``torch.utils.checkpoint``: autograd keeps each
    chunk's input state (one link per chunk) and recomputes the chunk in the backward, so the
    peak holds ≈ T/k + k links instead of T, for one more forward pass."""
    from torch.utils.checkpoint import checkpoint

    every = max(1, round(math.sqrt(len(xs))))
    n_state, n_x = len(DNCState._fields), len(DNCInterface._fields)

    def chunk(*flat):
        inner = [DNCInterface(*flat[j:j + n_x]) for j in range(n_state, len(flat), n_x)]
        new, total = _run_steps(step, DNCState(*flat[:n_state]), inner)
        return (*new, total)

    total = 0.0
    for c in range(0, len(xs), every):
        out = checkpoint(chunk, *state, *[t for x in xs[c:c + every] for t in x],
                         use_reentrant=False)
        state, total = DNCState(*out[:n_state]), total + out[n_state]
    return state, total


def run_sequence(step: Callable, cfg: Config, xs: list[DNCInterface], device: str,
                 train: bool, sync: bool = True) -> None:
    state = initial_state(cfg.batch, cfg.slots, cfg.word, cfg.heads, device=device)
    with torch.set_grad_enabled(train):
        _, total = _runner(step, train)(step, state, xs)
        if train:
            total.backward()
    if device == "cuda" and sync:
        torch.cuda.synchronize()


def _clear_grads(xs: list[DNCInterface]) -> None:
    for x in xs:
        for t in x:
            t.grad = None


def _event_ms(work: Callable[[], object]) -> float:
    """Device time of ``work`` on the current CUDA stream, in ms (CUDA events)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    work()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def time_graph(step: Callable, cfg: Config, xs, device: str, train: bool, repeats: int) -> list:
    """Replays of one whole sequence (forward, and backward when ``train``) captured in a CUDA
    graph, timed with CUDA events: the device time without the host's per-op overhead."""
    if device != "cuda":
        raise RuntimeError("CUDA graphs need --device cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):      # warm-up off the default stream, as capture requires
        for _ in range(2):
            _clear_grads(xs)
            run_sequence(step, cfg, xs, device, train, sync=False)
    torch.cuda.current_stream().wait_stream(side)
    _clear_grads(xs)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run_sequence(step, cfg, xs, device, train, sync=False)
    graph.replay()
    samples = [_event_ms(graph.replay) for _ in range(repeats)]
    del graph
    return samples


def saved_bytes(step: Callable, cfg: Config, xs: list[DNCInterface], device: str) -> int:
    """Bytes of distinct storages autograd saves for one training sequence."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        state = initial_state(cfg.batch, cfg.slots, cfg.word, cfg.heads, device=device)
        _runner(step, train=True)(step, state, xs)
    return sum(seen.values())


def time_runs(step: Callable, cfg: Config, xs, device: str, train: bool, repeats: int) -> list:
    run_sequence(step, cfg, xs, device, train)   # warm-up (and compile)
    samples = []
    for _ in range(repeats):
        _clear_grads(xs)
        start = time.perf_counter()
        run_sequence(step, cfg, xs, device, train)
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def peak_memory_mb(impl: str, cfg: Config, device: str) -> float:
    """Peak memory of one training sequence: on CUDA in this process (the allocator's own
    counters reset cleanly), on CPU in a fresh subprocess (the RSS high-water mark does not)."""
    if device == "cuda":
        return _probe(impl, device, cfg)
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
    _clear_grads(xs)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run_sequence(step, cfg, xs, device, train=True)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    if hasattr(torch.ops.dpbench, "dnc_link_cache_release"):   # the links kept by the warm-up
        torch.ops.dpbench.dnc_link_cache_release()              # would hide in the base RSS
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
                timer = time_graph if impl.endswith(GRAPH) else time_runs
                row.samples_ms = timer(step, cfg, xs, device, mode == "train", repeats)
                row.median_ms = statistics.median(row.samples_ms)
                if impl.endswith(GRAPH):   # device time only: memory as without the graph
                    rows.append(row)
                    continue
                if mode == "train" and impl != "compiled":   # hooks do not see inside
                    row.saved_mb = saved_bytes(step, cfg, xs, device) / 2**20   # compiled graphs
                if mode == "train" and memory:
                    row.peak_mb = peak_memory_mb(impl, cfg, device)
            except Exception as err:  # noqa: BLE001
                row.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            rows.append(row)
    return rows


def link_traffic(cfg: Config, dtype_bytes: int = 4) -> dict:
    """Link-matrix bytes per step: the minimum any implementation moves (forward: read
    L_{t-1}, write L_t; backward: read L_{t-1} and ∂L_t, write ∂L_{t-1}), and what the fused
    kernels move (the forward reads L_t back for the backward weighting, the backward reads
    L_{t-1} and ∂L_t twice: once by rows, once by columns)."""
    nn = cfg.batch * cfg.slots * cfg.slots * dtype_bytes
    return {"forward_min_bytes": 2 * nn, "forward_kernel_bytes": 3 * nn,
            "backward_min_bytes": 3 * nn, "backward_kernel_bytes": 5 * nn}


def copy_bandwidth(device: str = "cuda", nbytes: int = 1 << 30, repeats: int = 20) -> float:
    """Device-to-device copy rate in bytes/s, counting bytes read plus bytes written (median
    of ``repeats`` event-timed copies of ``nbytes`` after a warm-up)."""
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = [_event_ms(lambda: dst.copy_(src)) / 1e3 for _ in range(repeats)]
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes / statistics.median(times)


STREAM_FLOOR_MAX_BYTES = 2 << 30   # the replay holds T + 1 links; skipped above this


def link_stream_floor(cfg: Config, repeats: int = 5) -> Optional[dict]:
    """CPU time to stream a training sequence's link matrices and nothing else, in ms (medians of
    ``repeats`` after a warm-up): *forward*, T chained ``copy_`` into T fresh ``[B, N, N]``
    buffers (read L_{t-1}, write L_t, as every step of the fused forward does); *backward*, T
    ``add_`` of the saved links, newest first, into one gradient buffer (read L_{t-1}, read and
    write ∂L in place, as the fused backward does); *train* = their sum. No arithmetic per
    element beyond one add, so a fused kernel over the same bytes cannot beat it by much:
    measured / floor says how far the kernels are from memory-bound. None when the T + 1
    float32 links exceed :data:`STREAM_FLOOR_MAX_BYTES`."""
    shape = (cfg.batch, cfg.slots, cfg.slots)
    if (cfg.steps + 1) * math.prod(shape) * 4 > STREAM_FLOOR_MAX_BYTES:
        return None
    links = [torch.rand(shape) for _ in range(cfg.steps + 1)]
    grad = torch.zeros(shape)

    def forward():
        for t in range(cfg.steps):
            links[t + 1].copy_(links[t])

    def backward():
        for t in range(cfg.steps - 1, -1, -1):
            grad.add_(links[t])

    out = {}
    for name, work in (("forward", forward), ("backward", backward)):
        work()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            work()
            times.append((time.perf_counter() - t0) * 1e3)
        out[f"{name}_ms"] = statistics.median(times)
    out["train_ms"] = out["forward_ms"] + out["backward_ms"]
    return out


def stream_floor_row(cfg: Config, floor: Optional[dict], rows: list[Row]) -> dict:
    """One config's stream floor beside the fused times measured in the same run:
    ``fused_<mode>_over_floor`` = fused median / floor (1 = as fast as bare streaming)."""
    out = {**asdict(cfg), "floor": floor}
    times = {r.mode: r.median_ms for r in rows if r.impl == "fused" and r.config == asdict(cfg)}
    for mode in ("forward", "train"):
        out[f"fused_{mode}_ms"] = times.get(mode)
        out[f"fused_{mode}_over_floor"] = (times[mode] / floor[f"{mode}_ms"]
                                           if floor and times.get(mode) else None)
    return out


def bandwidth_floor(cfg: Config, bandwidth: float, rows: list[Row]) -> dict:
    """The link-traffic floor of a whole sequence (T steps) at ``bandwidth`` bytes/s, and how
    far the fused kernels' measured times are from it (measured / floor; 1 = at the floor):
    ``fused_*`` wall time with the host launching every op, ``fused_graph_*`` device time of
    CUDA-graph replays (when measured)."""
    t = link_traffic(cfg)
    floor = {"forward": cfg.steps * t["forward_min_bytes"] / bandwidth * 1e3,
             "train": cfg.steps * (t["forward_min_bytes"] + t["backward_min_bytes"])
             / bandwidth * 1e3}
    out = {**asdict(cfg), **t}
    for impl in ("fused", "fused" + GRAPH):
        times = {r.mode: r.median_ms for r in rows if r.impl == impl and r.config == asdict(cfg)}
        key = impl.replace(GRAPH, "_graph")
        for mode in ("forward", "train"):
            out[f"floor_{mode}_ms"] = floor[mode]
            out[f"{key}_{mode}_ms"] = times.get(mode)
            out[f"{key}_{mode}_over_floor"] = (times[mode] / floor[mode]
                                               if times.get(mode) else None)
    return out


if __name__ == "__main__":
    print(_probe(sys.argv[1], sys.argv[2], Config(**json.loads(sys.argv[3]))))

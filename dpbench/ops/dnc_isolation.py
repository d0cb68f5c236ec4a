"""Does a DNC trial change the process for the trials after it? (issue 19: no side effects)

Measured in one fresh process, in this order:

1. *before* — an LSTM training loop (``nn.LSTM`` 3 → ``hidden``, batch 64, 100 steps, Adam):
   sequences/s over ``repeats`` timed blocks; and the minor page faults of an allocation
   probe (four 4 MB tensors allocated, written and freed, ``rounds`` times: more than glibc's
   dynamic trim threshold, so it faults each round unless malloc was tuned);
2. a DNC trial: the fused kernels loaded and a few training sequences run (B=16, N=64);
3. *after* — the same two measurements again.

With the library's old load-time ``mallopt`` (now opt-in, ``DPBENCH_MALLOPT=1``) the probe's
faults drop to ~0 after the DNC and the LSTM runs under another allocator setting; without it
both stay as before. ``python -m dpbench.ops.dnc_isolation [--repeats 7]`` prints JSON.

``--control`` (:func:`measure_with_control`) cancels the machine's own speed swings, which
on a shared VM reach 2× within seconds and hide a small effect between "before" and
"after": a second, clean process (no DNC ever) pinned to the same core takes turns with
this one, burst for burst, before and after the DNC trial. The effect of the DNC trial is
``median(this / control) after`` over ``median(this / control) before``: 1 within noise
when the trial leaves nothing behind.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def allocation_probe_faults(rounds: int = 20, blocks: int = 4, mb: int = 4) -> float:
    """Minor page faults per round of allocating, writing and freeing ``blocks`` × ``mb`` MB."""
    n = mb * 2**20 // 4
    start = _faults()
    for _ in range(rounds):
        held = [torch.empty(n).fill_(1.0) for _ in range(blocks)]
        del held
    return (_faults() - start) / rounds


def lstm_throughput(repeats: int, hidden: int = 128, batch: int = 64, steps: int = 100,
                    iters: int = 5) -> list[float]:
    """Training sequences/s of a plain LSTM, one sample per block of ``iters`` Adam steps
    (after a warm-up: the first blocks of a fresh process run slower)."""
    burst = LSTMBurst(hidden, batch, steps, iters)
    return [burst() for _ in range(repeats)]


class LSTMBurst:
    """One LSTM training loop (as :func:`lstm_throughput`), timed one block at a time."""

    def __init__(self, hidden: int = 128, batch: int = 64, steps: int = 100, iters: int = 5):
        torch.manual_seed(0)
        self.model = torch.nn.LSTM(3, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 3)
        self.opt = torch.optim.Adam([*self.model.parameters(), *self.head.parameters()], lr=1e-3)
        self.x, self.y = torch.randn(batch, steps, 3), torch.randn(batch, steps, 3)
        self.batch, self.iters = batch, iters
        for _ in range(3 * iters):
            self.step()

    def step(self) -> None:
        out, _ = self.model(self.x)
        loss = torch.nn.functional.mse_loss(self.head(out), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def __call__(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self.iters):
            self.step()
        return self.iters * self.batch / (time.perf_counter() - t0)


def _control(conn, cpu: int | None) -> None:
    """The clean process of :func:`measure_with_control`: a burst per request."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    burst = LSTMBurst()
    conn.send("ready")
    while conn.recv():
        conn.send(burst())


def measure_with_control(rounds: int = 20, impl: str = "auto") -> dict:
    """Before/after LSTM throughput of this process against a clean control process on the
    same core, alternating bursts (this, control, control, this, …)."""
    import multiprocessing as mp

    cpu = min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_control, args=(theirs, cpu), daemon=True)
    proc.start()
    assert mine.recv() == "ready"
    burst = LSTMBurst()

    def phase() -> tuple[list[float], list[float]]:
        me, ctl = [], []
        for r in range(rounds):
            for who in ((0, 1) if r % 2 == 0 else (1, 0)):
                if who == 0:
                    me.append(burst())
                else:
                    mine.send(True)
                    ctl.append(mine.recv())
        return me, ctl

    before = phase()
    dnc = dnc_trial(impl=impl)
    after = phase()
    mine.send(False)
    proc.join(timeout=10)
    ratio = {k: statistics.median([a / b for a, b in zip(*v)]) for k, v in (("before", before), ("after", after))}
    return {"dnc": dnc, "DPBENCH_MALLOPT": os.environ.get("DPBENCH_MALLOPT"), "cpu": cpu, "rounds": rounds,
            "load_average": os.getloadavg(),
            "before": {"this": before[0], "control": before[1]}, "after": {"this": after[0], "control": after[1]},
            "ratio_to_control_before": ratio["before"], "ratio_to_control_after": ratio["after"],
            "dnc_effect": ratio["after"] / ratio["before"],
            "uncontrolled_after_over_before": statistics.median(after[0]) / statistics.median(before[0])}


def dnc_trial(sequences: int = 3, impl: str = "auto") -> str:
    """A few DNC training sequences (B=16, N=64, T=64), fused where the kernels load (or
    ``impl``; ``"load"`` only loads the fused library, to tell its load-time effects from the
    trial's); returns which implementation ran and where the kernels came from."""
    from dpbench.ops import _loader
    from dpbench.ops.dnc_bench import Config, make_interfaces, run_sequence, step_function

    status = _loader.fused_status("cpu")
    if impl == "auto":
        impl = "fused" if status.available else "reference"
    if impl == "load":      # the kernels' library loaded (its static initialisers run), no trial
        return f"load only ({status.reason})"
    cfg = Config(16, 64)
    step = step_function(impl)
    xs = make_interfaces(cfg, "cpu", grad=True)
    for _ in range(sequences):
        run_sequence(step, cfg, xs, "cpu", train=True)
    return f"{impl} ({status.reason})"


def measure(repeats: int = 7) -> dict:
    before = {"lstm_seq_per_s": lstm_throughput(repeats), "probe_faults": allocation_probe_faults()}
    dnc = dnc_trial()
    after = {"lstm_seq_per_s": lstm_throughput(repeats), "probe_faults": allocation_probe_faults()}
    med = {k: statistics.median(v["lstm_seq_per_s"]) for k, v in (("before", before),
                                                                   ("after", after))}
    return {"dnc": dnc, "DPBENCH_MALLOPT": os.environ.get("DPBENCH_MALLOPT"),
            "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
            "before": before, "after": after,
            "lstm_after_over_before": med["after"] / med["before"],
            "probe_faults_before": before["probe_faults"],
            "probe_faults_after": after["probe_faults"]}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--control", action="store_true",
                   help="against a clean process on the same core, alternating bursts (--repeats rounds)")
    p.add_argument("--impl", choices=["auto", "fused", "reference", "load"], default="auto",
                   help="the DNC trial's implementation with --control (default: fused where it "
                        "loads; load: only load the fused library)")
    args = p.parse_args()
    print(json.dumps(measure_with_control(args.repeats, args.impl) if args.control else measure(args.repeats),
                     indent=1))

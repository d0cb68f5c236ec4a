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
    """Training sequences/s of a plain LSTM, one sample per block of ``iters`` Adam steps."""
    torch.manual_seed(0)
    model = torch.nn.LSTM(3, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 3)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)
    x, y = torch.randn(batch, steps, 3), torch.randn(batch, steps, 3)

    def step() -> None:
        out, _ = model(x)
        loss = torch.nn.functional.mse_loss(head(out), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3 * iters):   # warm-up: the first blocks of a fresh process run slower
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        rates.append(iters * batch / (time.perf_counter() - t0))
    return rates


def dnc_trial(sequences: int = 3) -> str:
    """A few fused DNC training sequences (B=16, N=64, T=64); returns where the kernels came
    from."""
    from dpbench.ops import _loader
    from dpbench.ops.dnc_bench import Config, make_interfaces, run_sequence, step_function

    status = _loader.fused_status("cpu")
    impl = "fused" if status.available else "reference"
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
    print(json.dumps(measure(p.parse_args().repeats), indent=1))

"""Power and false-alarm rate of abtest's paired throughput rule, by simulation (docs/ci.md).

    python tests/benchmarks/abtest_power.py [--draws 1000] [--slowdown 0.2]

Each draw is one throughput cell: ``n`` trial pairs whose log ratios ``log(head / base)``
are normal with mean ``log(1 - slowdown)`` and standard deviation ``s`` (the per-pair
spread: what is left of the trial-to-trial noise after pairing), judged by
:func:`dpbench.compare.paired_throughput_row` with the default 10 % threshold. Printed as a
Markdown table: the share of draws flagged as a regression at α / m for each family size m
of ``--cells`` (α = 0.05; m = 1: one cell; m > 1: Holm's first step over m throughput cells
when the changed cell has the smallest p — the smoke suite has about 90 throughput cells),
and the A/A false-alarm share (slowdown 0, one cell, α). Fixed seed.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dpbench.compare import DEFAULT_ALPHA, DEFAULT_THRESHOLD, paired_throughput_row  # noqa: E402

KEY = ("fnn", "", "lorenz", "", "cpu", "infer_seq_per_s", "")


def flagged(rng: np.random.Generator, n: int, spread: float, shift: float, alpha: float, draws: int) -> float:
    """Share of ``draws`` cells with ``n`` pairs flagged as a regression."""
    hits = 0
    for _ in range(draws):
        d = shift + spread * rng.standard_normal(n)
        row = paired_throughput_row(KEY, {s: [1.0] for s in range(n)},
                                    {s: [math.exp(x)] for s, x in enumerate(d)}, DEFAULT_THRESHOLD, alpha)
        hits += row.regression
    return hits / draws


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--slowdown", type=float, default=0.2)
    ap.add_argument("--pairs", default="3,5,10")
    ap.add_argument("--spreads", default="0.05,0.1,0.2,0.3")
    ap.add_argument("--cells", default="1,10,90", help="family sizes m: power at Holm's first step α/m")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    shift = math.log(1 - args.slowdown)
    family = [int(m) for m in args.cells.split(",")]
    print(f"| pairs (seeds) | per-pair sd of log ratio | "
          + " | ".join(f"{args.slowdown:.0%} slowdown flagged, {m} cell{'s' if m > 1 else ''} (α/{m})" for m in family)
          + " | A/A false alarms, 1 cell (α) |")
    print("|---|---|" + "---|" * (len(family) + 1))
    for n in map(int, args.pairs.split(",")):
        for s in map(float, args.spreads.split(",")):
            power = [flagged(rng, n, s, shift, DEFAULT_ALPHA / m, args.draws) for m in family]
            aa = flagged(rng, n, s, 0.0, DEFAULT_ALPHA, args.draws)
            print(f"| {n} | {s:.2f} | " + " | ".join(f"{x:.0%}" for x in power) + f" | {aa:.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

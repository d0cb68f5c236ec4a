"""``dpbench compare BASELINE CURRENT``: the CI regression gate.

Compares every (model, dataset, params, device, metric) finished in both runs (run
directories or results.json files). Throughput regresses when it drops by more than
``--threshold`` AND a one-sided Mann-Whitney U test over the raw repeat samples gives
p <= ``--alpha``; accuracy metrics regress when they move the wrong way by more than
max(--acc-tolerance x |baseline|, a per-metric floor, the baseline's seed std).
See docs/ci.md.

Exit codes: 0 no regression; 1 at least one regression; 2 usage error, unreadable or
malformed input, or nothing comparable.
"""
from __future__ import annotations

import argparse
import math

from dpbench.compare import DEFAULT_ACC_TOLERANCE, DEFAULT_ALPHA, DEFAULT_THRESHOLD, Row

MARKS = {"regression": "❌ regression", "improved": "✅ improved", "ok": "ok", "untested": "untested"}


def _num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def table_rows(rows: list[Row], only_changes: bool) -> list[list[str]]:
    keep = [r for r in rows if not only_changes or r.status != "ok"]
    return [[r.model, r.dataset, r.device, r.metric, _num(r.baseline), _num(r.current),
             f"{r.ratio:.3f}" if math.isfinite(r.ratio) else "-",
             "-" if r.p_value is None else f"{r.p_value:.2g}", f"{r.n[0]}/{r.n[1]}",
             MARKS[r.status] + (f" ({r.note})" if r.note and r.status != "ok" else "")] for r in keep]


HEADERS = ["model", "dataset", "device", "metric", "baseline", "current", "ratio", "p", "n", "verdict"]


def _fraction(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be in (0, 1)")
    return v


def compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from dpbench.compare import compare_docs  # scipy.stats, imported here only
    from dpbench.results import load_results

    base, cur = load_results(args.baseline), load_results(args.current)
    rows = compare_docs(base, cur, args.threshold, args.alpha, args.acc_tolerance, args.normalize,
                        (args.baseline, args.current), args.relative_to)
    bad = [r for r in rows if r.regression]
    summary = (f"{len(bad)} regression(s), {sum(r.status == 'improved' for r in rows)} improvement(s) "
               f"in {len(rows)} comparisons (threshold {args.threshold:.0%}, alpha {args.alpha:g}"
               f"{', normalised by calibration' if args.normalize else ''}"
               f"{f', throughput relative to {args.relative_to}' if args.relative_to else ''})")
    body = table_rows(rows, args.changes_only)
    if args.format == "md":
        print(f"### dpbench: {'❌ ' if bad else '✅ '}{summary}\n")
        if body:
            print(tabulate(body, headers=HEADERS, tablefmt="github", disable_numparse=True))
    else:
        if body:
            print(tabulate(body, headers=HEADERS, disable_numparse=True))
        print(summary)
    return 1 if bad else 0


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two runs; exit 1 on a significant regression (CI gate)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline", metavar="BASELINE", help="baseline run directory or results.json")
    p.add_argument("current", metavar="CURRENT", help="current run directory or results.json")
    p.add_argument("--threshold", type=_fraction, default=DEFAULT_THRESHOLD,
                   help=f"smallest throughput change that counts (default {DEFAULT_THRESHOLD:g} = 10%%)")
    p.add_argument("--alpha", type=_fraction, default=DEFAULT_ALPHA,
                   help=f"significance level of the one-sided Mann-Whitney U test (default {DEFAULT_ALPHA:g})")
    p.add_argument("--acc-tolerance", type=_fraction, default=DEFAULT_ACC_TOLERANCE,
                   help=f"relative tolerance of accuracy metrics (default {DEFAULT_ACC_TOLERANCE:g})")
    p.add_argument("--normalize", action="store_true",
                   help="divide throughput by each run's calibration median (machine speed)")
    p.add_argument("--relative-to", metavar="MODEL",
                   help="compare throughput as a speedup over MODEL (e.g. lstm) measured in the same run")
    p.add_argument("--format", choices=["text", "md"], default="text", help="md: a table for a PR comment")
    p.add_argument("--changes-only", action="store_true", help="list only regressions, improvements, untested")
    p.set_defaults(func=compare)


"""``dpbench compare BASELINE CURRENT``: the CI regression gate.

Compares every (model, dataset, params, device, metric) finished in both runs (run
directories or results.json files). Throughput regresses when it drops by more than
``--threshold`` AND a one-sided Mann-Whitney U test over the raw repeat samples gives
p <= ``--alpha``; accuracy metrics regress when they move the wrong way by more than
max(--acc-tolerance x |baseline|, a per-metric floor, the baseline's seed std).
See docs/ci.md.

Accuracy is compared only with >= 3 seeds per side (a one-sided Mann-Whitney U test over
the seeds); fewer seeds are reported as "too few seeds". When the two runs come from
different machines (CPU model, ISA flags, torch version, thread count, calibration)
throughput verdicts are "inconclusive (different machine: ...)" unless --normalize;
when a run was oversubscribed or noisy (load >= cores, calibration spread) a throughput
change is "inconclusive (noisy run: ...)" instead of a regression.

Exit codes: 0 no regression; 1 at least one regression; 2 usage error, unreadable or
malformed input, or nothing comparable; 3 no regression but inconclusive verdicts
(another machine, a noisy run).
"""
from __future__ import annotations

import argparse
import math

from dpbench.compare import DEFAULT_ACC_TOLERANCE, DEFAULT_ALPHA, DEFAULT_THRESHOLD, Row

MARKS = {"regression": "❌ regression", "improved": "✅ improved", "ok": "ok", "untested": "untested",
         "inconclusive": "❔ inconclusive"}


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
    from dpbench.compare import apply_context, compare_docs, machine_differences, noise_reasons
    from dpbench.results import load_results

    base, cur = load_results(args.baseline), load_results(args.current)
    rows = compare_docs(base, cur, args.threshold, args.alpha, args.acc_tolerance, args.normalize,
                        (args.baseline, args.current), args.relative_to)
    machine = machine_differences(base, cur)
    noise = noise_reasons(base, "baseline") + noise_reasons(cur, "current")
    apply_context(rows, machine, noise, args.normalize)
    return print_verdicts(rows, args, machine, noise)


def print_verdicts(rows: list[Row], args: argparse.Namespace, machine: list[str], noise: list[str]) -> int:
    """Print the table and summary in ``args.format``; return the exit code (0 / 1 / 3)."""
    from tabulate import tabulate

    from dpbench.compare import exit_code
    bad = [r for r in rows if r.regression]
    unsure = sum(r.status == "inconclusive" for r in rows)
    few = sum("too few seeds" in r.note for r in rows)
    context = ([f"different machine: {'; '.join(machine)}"] if machine else []) + \
        ([f"noisy run: {'; '.join(noise)}"] if noise else [])
    summary = (f"{len(bad)} regression(s), {sum(r.status == 'improved' for r in rows)} improvement(s), "
               f"{unsure} inconclusive{f', {few} with too few seeds' if few else ''} "
               f"in {len(rows)} comparisons (threshold {args.threshold:.0%}, alpha {args.alpha:g}"
               f"{', normalised by calibration' if getattr(args, 'normalize', False) else ''}"
               f"{f', throughput relative to {rel}' if (rel := getattr(args, 'relative_to', None)) else ''})")
    body = table_rows(rows, args.changes_only)
    code = exit_code(rows)
    if args.format == "md":
        print(f"### dpbench: {'❌ ' if bad else '❔ ' if code == 3 else '✅ '}{summary}\n")
        for c in context:
            print(f"*{c}*\n")
        if body:
            print(tabulate(body, headers=HEADERS, tablefmt="github", disable_numparse=True))
    else:
        if body:
            print(tabulate(body, headers=HEADERS, disable_numparse=True))
        print(summary)
        for c in context:
            print(c)
    return code


def add_gate_options(p: argparse.ArgumentParser) -> None:
    """The verdict options shared by ``compare`` and ``abtest``."""
    p.add_argument("--threshold", type=_fraction, default=DEFAULT_THRESHOLD,
                   help=f"smallest throughput change that counts (default {DEFAULT_THRESHOLD:g} = 10%%)")
    p.add_argument("--alpha", type=_fraction, default=DEFAULT_ALPHA,
                   help=f"significance level of the one-sided tests (default {DEFAULT_ALPHA:g})")
    p.add_argument("--acc-tolerance", type=_fraction, default=DEFAULT_ACC_TOLERANCE,
                   help=f"relative tolerance of accuracy metrics (default {DEFAULT_ACC_TOLERANCE:g})")
    p.add_argument("--format", choices=["text", "md"], default="text", help="md: a table for a PR comment")
    p.add_argument("--changes-only", action="store_true", help="list only regressions, improvements, untested")


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two runs; exit 1 on a significant regression (CI gate)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline", metavar="BASELINE", help="baseline run directory or results.json")
    p.add_argument("current", metavar="CURRENT", help="current run directory or results.json")
    add_gate_options(p)
    p.add_argument("--normalize", action="store_true",
                   help="divide throughput by each run's calibration median (machine speed)")
    p.add_argument("--relative-to", metavar="MODEL",
                   help="compare throughput as a speedup over MODEL (e.g. lstm) measured in the same run")
    p.set_defaults(func=compare)


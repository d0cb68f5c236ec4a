"""``dpbench stability RUN_A RUN_B``: do two runs rank the models the same way?

For each dataset both runs have (run directories or results.json files), the models are
ordered by the mean over seeds of the dataset's headline metric (VPT, else one-step NRMSE;
accuracy, else MSE; or ``--metric``) and the two orderings are compared: Spearman's ρ and
the pairwise verdicts that flip. Typical use: the same suite at ``--budget-scale 1`` and
``--budget-scale 5`` (see results/README.md).

Exit codes: 0 printed; 2 usage error, unreadable input, or no dataset in common.
"""
from __future__ import annotations

import argparse



def run(args: argparse.Namespace) -> int:
    from dpbench.report.stability import compare_runs, fraction_stable, stability_table
    from dpbench.report.tables import render
    from dpbench.results import load_results, trials_of

    a, b = trials_of(load_results(args.run_a)), trials_of(load_results(args.run_b))
    rows = compare_runs(a, b, args.metric)
    print(render(stability_table(rows), "pipe" if args.markdown else "simple"))
    print(f"\n{fraction_stable(rows, args.threshold):.0%} of {len(rows)} datasets have ρ ≥ {args.threshold:g}")
    return 0


def _threshold(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not -1 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be between -1 and 1")
    return v


def add_parser(sub) -> None:
    p = sub.add_parser("stability", help="rank correlation and flipped verdicts between two runs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", metavar="RUN_A", help="run directory or results.json")
    p.add_argument("run_b", metavar="RUN_B", help="run directory or results.json")
    p.add_argument("--metric", help="compare on this metric instead of each dataset's headline metric")
    p.add_argument("--threshold", type=_threshold, default=0.8, help="ρ counted as stable (default 0.8)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=run)

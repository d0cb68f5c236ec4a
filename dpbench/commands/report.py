"""``dpbench report RUN_DIR``: Markdown report with tables and figures of a finished run.

Writes ``RUN_DIR/report.md`` (or ``--out FILE``, links relative to that file's folder) and
PNG figures in ``RUN_DIR/figures/``; prints the tables and where the files are.
Exit codes: 0 written; 2 unreadable or malformed run.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def report(args: argparse.Namespace) -> int:
    from dpbench.report.build import write_report

    out, rep = write_report(Path(args.run_dir), Path(args.out) if args.out else None, args.title,
                            args.published, tuple(Path(r) for r in args.with_runs))
    if not args.quiet:
        print(rep.terminal)
    print(f"report: {out}")
    if rep.figures:
        print(f"figures: {Path(rep.figures[0]).parent} ({len(rep.figures)} files)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write a Markdown report with tables and figures of a run",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (or its results.json)")
    p.add_argument("--out", metavar="FILE", help="Markdown file to write (default RUN_DIR/report.md)")
    p.add_argument("--title", help="report title (default: the run id)")
    p.add_argument("--published", action="store_true",
                   help="add how-to-regenerate notes (for results/README.md)")
    p.add_argument("--quiet", action="store_true", help="print only the paths, not the tables")
    p.add_argument("--with", dest="with_runs", action="append", default=[], metavar="RUN_DIR",
                   help="another run (e.g. the same suite on another device) whose throughput joins "
                        "the throughput table, with per-model device ratios; repeatable")
    p.set_defaults(func=report)

"""``dpbench run``: run a suite (default: ``default``) and print the summary.

Exit codes: 0 all trials ok; 1 some trial failed, diverged, ran out of memory or timed
out (``--allow-failures`` makes that 0); 2 bad input; 130 interrupted (finished trials
are saved; ``--resume RUN_DIR`` continues).
"""
from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from dpbench.harness.executors import EXECUTORS, make_executor
from dpbench.harness.runner import load_run_config, run_suite
from dpbench.harness.suite import load_suite, override, suite_from_dict
from dpbench.report.summary import failures, summary_rows
from dpbench.params import UsageError
from dpbench.plugins import get_registry


def print_summary(trials, derived, stream=None) -> None:
    """The run's terminal summary: per-kind tables, long-dependency table, failures."""
    stream = stream or sys.stdout
    for kind, (headers, rows) in summary_rows(trials).items():
        print(f"\n{kind} (mean ± std over seeds)", file=stream)
        print(tabulate(rows, headers=headers), file=stream)
    if derived:
        print("\nlong-dependency recall", file=stream)
        print(tabulate([[d["dataset"], d.get("block", ""), d["model"] + (f":{d['model_params']}" if d["model_params"] else ""),
                         d["device"], d["metric"], d["value"],
                         ",".join(f"{x:g}" for x in d["lags"])] for d in derived],
                       headers=["dataset", "block", "model", "device", "metric", "value", "lags"]), file=stream)
    failed = failures(trials)
    if failed:
        print(f"\n{len(failed)} trial(s) did not finish ok:", file=stream)
        for t in failed:
            print(f"  {t.status}: {t.model} on {t.dataset} seed {t.seed} {t.device}: {t.error}", file=stream)


def _positive(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be > 0")
    return v


def _count(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 0")
    return v


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    registry = get_registry()
    if args.resume:
        given = [flag for flag, value in (("--suite", args.suite), ("--models", args.models),
                                          ("--datasets", args.datasets), ("--seeds", args.seeds),
                                          ("--out", args.out), ("--device", args.device),
                                          ("--steps", args.steps), ("--save-attention", args.save_attention))
                 if value]
        if given:
            raise UsageError(f"--resume takes the run's own configuration; drop {', '.join(given)} "
                             "(resume accepts --trial-timeout, --executor, --jobs, --threads, --quiet)")
        config = load_run_config(args.resume)
        suite = suite_from_dict(config.get("suite", {}))
        options = config.get("options", {})
    else:
        suite = load_suite(args.suite or "default")
        suite = override(suite, args.models, args.datasets, args.seeds, args.device, args.steps)
        if args.save_attention:
            from dataclasses import replace

            suite = replace(suite, blocks=tuple(
                replace(b, eval=replace(b.eval, save_diagnostics=args.save_attention)) for b in suite.blocks))
        options = {"trial_timeout": args.trial_timeout, "allow_failures": args.allow_failures}
    timeout = args.trial_timeout or options.get("trial_timeout")
    executor = make_executor(args.executor, args.jobs, args.ray_address)
    run_dir, writer, _ = run_suite(suite, registry, out=args.out, force=args.force, resume=args.resume,
                                   timeout=timeout, quiet=args.quiet, options=options, executor=executor)
    print_summary(writer.trials, writer.derived)  # derived already computed by the runner
    print(f"\nresults: {run_dir / 'results.csv'}  {run_dir / 'results.json'}")
    if failures(writer.trials) and not (args.allow_failures or options.get("allow_failures")):
        return 1
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a benchmark suite and print the comparison",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", help="built-in suite name (smoke, default, paper) or a .toml file; default: default")
    p.add_argument("--models", help="comma-separated models with parameters, e.g. lstm,gru:hidden=32")
    p.add_argument("--datasets", help="comma-separated datasets, e.g. lorenz:noise=0.05,copy:lag=[10,50]")
    p.add_argument("--seeds", type=_count, help="number of seeds (0..N-1)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], help="device(s) to run on")
    p.add_argument("--steps", type=_count, help="override the training steps of every block")
    p.add_argument("--out", help="run directory (default results/runs/<timestamp>)")
    p.add_argument("--force", action="store_true", help="reuse a non-empty --out directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run")
    p.add_argument("--trial-timeout", type=_positive, metavar="SECONDS", help="time limit per trial")
    p.add_argument("--allow-failures", action="store_true", help="exit 0 even when trials failed")
    p.add_argument("--save-attention", "--save-diagnostics", type=_count, default=0, metavar="K",
                   help="save diagnostics (attention maps, memory weightings) of the first K test samples")
    p.add_argument("--executor", default="local", help=f"where trials run: {', '.join(sorted(EXECUTORS))} (default local)")
    p.add_argument("--jobs", type=_count, default=1, help="worker processes for CPU trials (default 1)")
    p.add_argument("--ray-address", help="address of a running Ray cluster (with --executor ray)")
    p.add_argument("--threads", type=_count, default=0,
                   help="torch intra-op threads for CPU trials (default: torch's choice; recorded in the environment block)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)

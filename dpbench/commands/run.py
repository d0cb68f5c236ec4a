"""``dpbench run``: run a suite (default: ``default``) and print the summary.

Exit codes: 0 all trials ok; 1 some trial failed, diverged, ran out of memory or timed
out (``--allow-failures`` makes that 0); 2 bad input; 130 interrupted (finished trials
are saved; ``--resume RUN_DIR`` continues).
"""
from __future__ import annotations

import argparse
import sys

from dpbench.params import UsageError

#: kept in step with :data:`dpbench.harness.executors.EXECUTORS` (a test checks it); named
#: here so that ``dpbench run --help`` imports no torch
EXECUTOR_NAMES = ("local", "process", "ray")


def print_summary(trials, derived, stream=None) -> None:
    """The run's terminal summary (:mod:`dpbench.report.terminal`)."""
    from dpbench.report.terminal import summary_text

    print("\n" + summary_text(trials, derived), end="", file=stream or sys.stdout)


def print_next_steps(run_dir, stream=None) -> None:
    """Where the results are (absolute paths) and the command that reports them."""
    run_dir = run_dir.resolve()
    stream = stream or sys.stdout
    print(f"\nresults: {run_dir / 'results.csv'}\n         {run_dir / 'results.json'}", file=stream)
    print(f"next:    dpbench report {run_dir}", file=stream)


def _positive(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be > 0")
    return v


def _integer(value: str) -> int:
    """An integer; its range is checked where it is used (one message for every bad value)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None


def _count(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 0")
    return v


def run(args: argparse.Namespace) -> int:
    from dpbench.harness.executors import make_executor
    from dpbench.harness.runner import load_run_config, run_suite
    from dpbench.harness.suite import load_suite, override, resolve_jobs, scale_budget, suite_from_dict
    from dpbench.report.summary import failures
    from dpbench.plugins import get_registry

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    registry = get_registry()
    if args.resume:
        given = [flag for flag, value in (("--suite", args.suite), ("--models", args.models),
                                          ("--datasets", args.datasets), ("--seeds", args.seeds),
                                          ("--out", args.out), ("--device", args.device),
                                          ("--steps", args.steps), ("--save-attention", args.save_attention),
                                          ("--budget-scale", args.budget_scale))
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
        if args.budget_scale is not None:
            suite = scale_budget(suite, args.budget_scale)
        options = {"trial_timeout": args.trial_timeout, "allow_failures": args.allow_failures,
                   "budget_scale": args.budget_scale or 1.0}
    timeout = args.trial_timeout or options.get("trial_timeout")
    jobs = resolve_jobs(args.jobs, suite)
    executor = make_executor(args.executor, jobs, args.ray_address)
    run_dir, writer, _ = run_suite(suite, registry, out=args.out, force=args.force, resume=args.resume,
                                   timeout=timeout, quiet=args.quiet, options=options, executor=executor,
                                   jobs=jobs)
    print_summary(writer.trials, writer.derived)  # derived already computed by the runner
    print_next_steps(run_dir)
    if failures(writer.trials) and not (args.allow_failures or options.get("allow_failures")):
        return 1
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a benchmark suite and print the comparison",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", help="built-in suite name (smoke, default, standard, paper) or a .toml file; default: default")
    p.add_argument("--models", help="comma-separated models with parameters, e.g. lstm,gru:hidden=32")
    p.add_argument("--datasets", help="comma-separated datasets, e.g. lorenz:noise=0.05,copy:lag=[10,50]")
    p.add_argument("--seeds", type=_integer, help="number of seeds (0..N-1), 1 to 1000")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], help="device(s) to run on")
    p.add_argument("--steps", type=_count, help="override the training steps of every block")
    p.add_argument("--budget-scale", type=_positive, metavar="K",
                   help="multiply every step budget, tuning budget included, by K (verdict stability: dpbench stability)")
    p.add_argument("--out", help="run directory (default results/runs/<timestamp>)")
    p.add_argument("--force", action="store_true", help="reuse a non-empty --out directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run")
    p.add_argument("--trial-timeout", type=_positive, metavar="SECONDS", help="time limit per trial")
    p.add_argument("--allow-failures", action="store_true", help="exit 0 even when trials failed")
    p.add_argument("--save-attention", "--save-diagnostics", type=_count, default=0, metavar="K",
                   help="save diagnostics (attention maps, memory weightings) of the first K test samples")
    p.add_argument("--executor", default="local", help=f"where trials run: {', '.join(EXECUTOR_NAMES)} (default local)")
    p.add_argument("--jobs", type=_count, default=None,
                   help="worker processes for CPU trials, each with one torch thread per core it gets "
                        "(default: the suite's `jobs`; default and standard: one per CPU core; others: 1)")
    p.add_argument("--ray-address", help="address of a running Ray cluster (with --executor ray)")
    p.add_argument("--threads", type=_count, default=0,
                   help="torch intra-op threads for CPU trials (default: torch's choice; recorded in the environment block)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)

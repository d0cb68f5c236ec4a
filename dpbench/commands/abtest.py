"""``dpbench abtest BASE_REV [HEAD_REV]``: run two git revisions side by side and compare.

Both revisions are checked out in temporary git worktrees and imported from there; their
trials run on this machine one at a time, interleaved (A B B A A B ...), so load and
thermal drift hit both sides alike; every trial runs in a fresh worker process of its side
(--one-process: one per side). After each trial pair both sides' workers time the pair's
model in alternating bursts (--timing-rounds, --burst), fractions of a second apart, so
both see the same machine (interleaved.json). Each side writes an ordinary run directory
(OUT/base, OUT/head; default OUT results/abtest/<timestamp>), then the two are compared:
throughput by a paired test -- per seed, the log of the median ratio of partner bursts
(the trials' own medians with --timing-rounds 0); a one-sided t-test over the seeds (fewer
than 2 seeds: untested) -- Holm-corrected over all throughput cells; accuracy by the rules of ``dpbench compare`` (see docs/ci.md). HEAD_REV
defaults to HEAD, which
then needs a clean working tree. A trial that fails on one side only is listed as a
failure of that side, not as a regression.

Exit codes: 0 no regression; 1 a regression, or a trial that failed on HEAD only;
2 bad input (a revision that does not exist, a dirty working tree without HEAD_REV, a
suite that a side cannot run).
"""
from __future__ import annotations

import argparse

from dpbench.abtest import DEFAULT_BURST_S, DEFAULT_ROUNDS
from dpbench.commands.compare import add_gate_options
from dpbench.commands.run import _count, _positive

#: torch intra-op threads per side (docs/ci.md, "Threads": measured on 2 cores)
DEFAULT_THREADS = 1


def abtest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dpbench.abtest import abtest_rows, default_out, load_ab_docs, run_abtest
    from dpbench.commands.compare import print_verdicts
    from dpbench.compare import noise_reasons

    suite = str(Path(args.suite).resolve()) if Path(args.suite).is_file() else args.suite
    cfg = {"suite": suite, "models": args.models, "datasets": args.datasets, "seeds": args.seeds,
           "steps": args.steps, "threads": args.threads, "timeout": args.trial_timeout,
           "calibrate": not args.no_calibrate}
    out = Path(args.out) if args.out else default_out()
    result = run_abtest(Path(args.repo), args.base_rev, args.head_rev, cfg, out, fresh=not args.one_process,
                        rounds=args.timing_rounds, burst=args.burst)
    *docs, aligned = load_ab_docs(out)
    rows = abtest_rows(*docs, args.threshold, args.alpha, args.acc_tolerance, (result.base.title, result.head.title),
                       aligned)
    noise = noise_reasons(docs[0], "base") + noise_reasons(docs[1], "head")
    code = print_verdicts(rows, args, [], [])
    if noise:  # interleaving spreads it over both sides: information, not a reason to doubt
        print(f"note: machine busy or noisy during the run ({'; '.join(noise)}); both sides shared it")
    for side in ("base", "head"):
        failed = result.only_failed[side]
        if failed:
            print(f"{len(failed)} trial(s) failed on the {side} side only (a failure of that side, "
                  "not a regression):")
            for line in failed:
                print(f"  {line}")
    print(f"runs: {out / 'base'}  {out / 'head'}")
    return 1 if code == 1 or result.only_failed["head"] else code


def add_parser(sub) -> None:
    p = sub.add_parser("abtest", help="run two git revisions side by side and compare them (CI gate)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base_rev", metavar="BASE_REV", help="baseline revision (branch, tag, sha)")
    p.add_argument("head_rev", metavar="HEAD_REV", nargs="?", help="revision under test (default HEAD, clean tree)")
    p.add_argument("--suite", required=True, help="built-in suite name or a .toml file (as seen by both revisions)")
    p.add_argument("--models", help="comma-separated models (replaces every block's list)")
    p.add_argument("--datasets", help="comma-separated datasets (replaces every block's list)")
    p.add_argument("--seeds", type=_count, help="number of seeds (0..N-1)")
    p.add_argument("--steps", type=_count, help="override the training steps of every block")
    p.add_argument("--threads", type=_count, default=DEFAULT_THREADS,
                   help=f"torch intra-op threads of each side (default {DEFAULT_THREADS}; 0 = torch's choice)")
    p.add_argument("--trial-timeout", type=_positive, metavar="SECONDS", help="time limit per trial")
    p.add_argument("--one-process", action="store_true",
                   help="one long-lived worker per side instead of a fresh process per trial (faster, but a "
                        "process-level speed difference then looks like a code change)")
    p.add_argument("--timing-rounds", type=_count, default=DEFAULT_ROUNDS, metavar="R",
                   help=f"interleaved timing bursts per side after each trial pair, the throughput figures "
                        f"compared (default {DEFAULT_ROUNDS}; 0 = the trials' own timing samples)")
    p.add_argument("--burst", type=_positive, default=DEFAULT_BURST_S, metavar="SECONDS",
                   help=f"seconds of one timing burst, inference and training (default {DEFAULT_BURST_S})")
    p.add_argument("--no-calibrate", action="store_true",
                   help="skip each side's calibration workload (it only feeds the noisy-machine note)")
    p.add_argument("--repo", default=".", help="the git repository (default: the current directory's)")
    p.add_argument("--out", help="folder for the two run directories (default results/abtest/<timestamp>)")
    add_gate_options(p)
    p.set_defaults(func=abtest)

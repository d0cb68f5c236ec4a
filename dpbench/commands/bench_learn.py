"""``dpbench bench dnc-learn``: time to accuracy of the DNC on copy and associative recall,
``impl=reference`` and ``impl=fused`` side by side (engine: :mod:`dpbench.ops.dnc_learn`).

With ``--parallel`` the implementations train at the same time in separate processes, one
thread each, so both see the same machine load (the fair comparison on a shared machine);
otherwise one after the other, each in a fresh worker process with the threads ``--threads``
gives it (per impl, ``reference=1,fused=2``: each at its own fastest count on an idle
machine). ``--seeds 0,1,2`` repeats that for each seed and adds the comparison over seeds
(:func:`dpbench.ops.dnc_learn.over_seeds`). Writes ``<out>/dnc_learn.json`` (config, curves,
summary) and ``<out>/curves.png``; with several seeds it rewrites both after each seed
(``"partial": true``, ``seeds_done``), so a killed run keeps the seeds that finished. Ctrl-C
ends the runs with what they have measured (``stopped_by: "interrupted"``,
``"interrupted": true``) and still writes them.
``--from a.json,b.json`` trains nothing: it re-analyses the runs recorded in earlier reports,
pooled, with this code's summary and comparison over seeds.
``--step-time ROUNDS`` only times training steps of the reference, the fused per-step op and
the fused whole-sequence op side by side (:func:`dpbench.ops.dnc_learn.step_times`;
``step_time.json``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path

from dpbench.params import UsageError


def _spawn(cfg) -> subprocess.Popen:
    """One run in a fresh worker process (progress on its stderr, the result on stdout); with
    ``cfg.threads`` its OpenMP pool is sized from the start, so no run inherits another's
    thread pool or allocator state."""
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg.threads)) if cfg.threads else None
    return subprocess.Popen([sys.executable, "-m", "dpbench.ops.dnc_learn_worker",
                             json.dumps(asdict(cfg))], stdout=subprocess.PIPE, text=True, env=env)


def _interrupted(results: list) -> bool:
    return any(r["stopped_by"] == "interrupted" for r in results)


def _collect(procs: list) -> list:
    """The workers' results. A Ctrl-C here is passed on to the workers (each ends its run with
    the curve so far and still prints its result, see dnc_learn_worker) instead of
    interrupting this process, so no worker's output is lost mid-read."""
    import signal

    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, forward)
    try:
        outs = [p.communicate()[0] for p in procs]
    finally:
        signal.signal(signal.SIGINT, previous)
    for p, out in zip(procs, outs):
        if p.returncode != 0 or not out.strip():
            raise RuntimeError(f"dnc-learn worker failed (exit {p.returncode})")
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def plot(results: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["config"]["task"] for r in results})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        runs = [r for r in results if r["config"]["task"] == task]
        seeds = len({r["config"]["seed"] for r in runs})
        several, labelled = seeds > 1, set()
        for r in runs:
            t, impl = [c[1] / 60 for c in r["curve"]], r["config"]["impl"]
            color = {"reference": "C0", "fused": "C1"}.get(impl)
            label = None if impl in labelled else (
                f"{impl}: final lesson ({seeds} seeds)" if several else f"{impl}: final lesson")
            labelled.add(impl)
            ax.plot(t, [c[4] for c in r["curve"]], color=color, alpha=0.6 if several else 1,
                    label=label)
            if not several:   # with several seeds the lesson curves would hide the rest
                ax.plot(t, [c[3] for c in r["curve"]], color=color, ls=":",
                        label=f"{impl}: current lesson")
        ax.axhline(next(r["target"] for r in results if r["config"]["task"] == task),
                   color="k", lw=0.8, ls="--", label="target")
        ax.axhline(next(r["chance"] for r in results if r["config"]["task"] == task),
                   color="grey", lw=0.8, ls="-.", label="chance")
        ax.set(title=task, xlabel="wall time (min)", ylabel="validation accuracy", ylim=(0, 1))
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _seeds(args: argparse.Namespace) -> list[int]:
    if not args.seeds:
        return [args.seed]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds={args.seeds!r} must be comma-separated integers, e.g. 0,1,2")
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds={args.seeds!r} needs distinct integers, e.g. 0,1,2")
    return seeds


def bench_dnc_learn(args: argparse.Namespace) -> int:
    from dpbench.ops.dnc_learn import LEARN_IMPLS as IMPLS, TASKS, LearnConfig

    tasks = [t for t in args.tasks.split(",") if t]
    impls = [i for i in args.impls.split(",") if i]
    if bad := [t for t in tasks if t not in TASKS]:
        raise UsageError(f"unknown task {bad[0]!r}; choose from {', '.join(TASKS)}")
    if bad := [i for i in impls if i not in IMPLS]:
        raise UsageError(f"unknown impl {bad[0]!r}; choose from {', '.join(IMPLS)}")
    if args.max_seconds <= 0 or args.max_steps <= 0:
        raise UsageError("--max-seconds and --max-steps must be > 0")
    if args.slots < 1 or args.word < 1:
        raise UsageError(f"--slots={args.slots} and --word={args.word} must be >= 1")
    if args.from_reports:
        if args.step_time:
            raise UsageError("--from re-analyses recorded runs; it cannot go with --step-time")
        return _reanalyse(args.from_reports, args.out)
    threads = _threads(args.threads, args.parallel)
    if args.step_time:   # negative: rejected there
        return _step_time(args, tasks, threads)
    seeds = _seeds(args)
    results: list[dict] = []
    for seed, task in itertools.product(seeds, tasks):
        cfgs = [LearnConfig(task=task, impl=impl, max_seconds=args.max_seconds,
                            max_steps=args.max_steps, seed=seed, lr=args.lr, slots=args.slots,
                            word=args.word, threads=threads[impl])
                for impl in impls]
        if args.parallel:
            results += _collect([_spawn(c) for c in cfgs])
        else:
            for c in cfgs:
                results += _collect([_spawn(c)])
                if _interrupted(results):
                    break
        if _interrupted(results):
            print("dpbench bench: interrupted; reporting the runs measured so far",
                  file=sys.stderr)
            break
        last = (seed, task) == (seeds[-1], tasks[-1])   # the final report follows anyway
        if args.out and len(seeds) > 1 and not last:   # a killed run keeps the seeds done
            _write(_report(results, seeds, args.parallel), Path(args.out), partial=True)
    report = _report(results, seeds, args.parallel)
    print(json.dumps(report["over_seeds" if len(seeds) > 1 else "summary"], indent=1))
    if args.out:
        _write(report, Path(args.out))
    return 0


def _recorded_runs(paths: str) -> tuple[list[str], list[dict], bool]:
    """The runs of the ``dnc_learn.json`` reports named in ``paths`` (comma-separated), pooled,
    and whether all of them ran ``--parallel``; a (task, impl, seed) recorded in two of them is
    refused, so no run counts twice."""
    sources, runs, seen, parallel = [p for p in paths.split(",") if p], [], {}, True
    for path in sources:
        try:
            report = json.loads(Path(path).read_text())
        except OSError as e:
            raise UsageError(f"--from: cannot read {path!r} ({e.strerror})")
        except ValueError:
            raise UsageError(f"--from: {path!r} is not JSON; give dnc_learn.json reports")
        if not isinstance(report, dict) or not isinstance(report.get("runs"), list):
            raise UsageError(f"--from: {path!r} is not a dnc-learn report (no 'runs' list)")
        parallel = parallel and bool(report.get("parallel"))
        for run in report["runs"]:
            key = tuple(run["config"][k] for k in ("task", "impl", "seed"))
            if key in seen:
                raise UsageError(f"--from: task {key[0]} impl {key[1]} seed {key[2]} is in both "
                                 f"{seen[key]!r} and {path!r}")
            seen[key] = path
            runs.append(run)
    if not runs:
        raise UsageError(f"--from={paths!r} names no report with runs")
    return sources, runs, parallel


def _reanalyse(paths: str, out: str | None) -> int:
    """``--from``: the report of recorded runs (several reports pooled), analysed by this
    code's :func:`_report`; no training. The pooled runs keep their own configs and load."""
    sources, runs, parallel = _recorded_runs(paths)
    seeds = sorted({r["config"]["seed"] for r in runs})
    report = {"sources": sources, **_report(runs, seeds, parallel)}
    print(json.dumps(report["over_seeds" if len(seeds) > 1 else "summary"], indent=1))
    if out:
        _write(report, Path(out))
    return 0


def _threads(spec: str, parallel: bool) -> dict[str, int]:
    """``--threads``: ``N`` for every impl, or per impl (``reference=1,fused=2``; an impl not
    named gets torch's default, 0). ``--parallel`` runs each impl on one thread."""
    from dpbench.ops.dnc_learn import LEARN_IMPLS as IMPLS

    if parallel:
        if spec not in ("", "0", "1"):
            raise UsageError(f"--threads={spec!r} cannot go with --parallel (one thread per "
                             f"impl, side by side); drop one of them")
        return dict.fromkeys(IMPLS, 1)
    pairs = [p.split("=", 1) for p in spec.split(",") if p] if "=" in spec else None
    if pairs and (bad := next((i for i, *_ in pairs if i not in IMPLS), None)):
        raise UsageError(f"--threads: unknown impl {bad!r}; choose from {', '.join(IMPLS)}")
    try:
        out = dict.fromkeys(IMPLS, 0 if pairs else int(spec or 0))
        out.update({impl: int(n) for impl, n in pairs or ()})
    except ValueError:
        raise UsageError(f"--threads={spec!r} must be N or impl=N pairs, e.g. reference=1,fused=2")
    if any(n < 0 for n in out.values()):
        raise UsageError(f"--threads={spec!r}: thread counts must be >= 0")
    return out


def _step_time(args: argparse.Namespace, tasks: list[str], threads: dict[str, int]) -> int:
    """``--step-time``: per-step training time of each variant, no training to the target."""
    from dpbench.ops.dnc_learn import LearnConfig, step_times

    if args.step_time < 1:
        raise UsageError(f"--step-time={args.step_time} must be >= 1 (rounds)")
    report = {"load_average_start": os.getloadavg()}
    for task in tasks:
        cfg = LearnConfig(task=task, seed=args.seed, lr=args.lr, slots=args.slots,
                          word=args.word)
        report[task] = step_times(cfg, rounds=args.step_time, threads=threads)
        print(json.dumps({task: {k: report[task][k] for k in
                                 ("median_ms", "reference_over", "step_over_sequence")}},
                         indent=1))
    report["load_average_end"] = os.getloadavg()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "step_time.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _report(results: list[dict], seeds: list[int], parallel: bool) -> dict:
    """dnc_learn.json's content for the runs so far: per-seed summaries and, with several
    seeds, the comparison over the seeds that have runs."""
    from dpbench.ops.dnc_learn import LearnResult, over_seeds, summary

    keys = {f.name for f in fields(LearnResult)}
    runs = [LearnResult(**{k: v for k, v in r.items() if k in keys}) for r in results]
    report = {"load_average_end": os.getloadavg(), "parallel": parallel,
              "interrupted": _interrupted(results)}
    if len(seeds) == 1:
        report["summary"] = summary(runs)
    else:   # one table per seed, and the comparison over the seeds
        done = [s for s in seeds if any(r.config["seed"] == s for r in runs)]
        report["seeds_done"] = done
        report["summary"] = {str(s): summary([r for r in runs if r.config["seed"] == s])
                             for s in done}
        report["over_seeds"] = over_seeds(runs)
    report["runs"] = results
    return report


def _write(report: dict, out: Path, partial: bool = False) -> None:
    """dnc_learn.json and curves.png; ``partial`` marks a report written between seeds."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "dnc_learn.json").write_text(json.dumps({**report, "partial": partial}, indent=1)
                                        + "\n")
    plot(report["runs"], out / "curves.png")


def add_parser(kinds) -> None:
    d = kinds.add_parser("dnc-learn", help="DNC time to accuracy on copy and associative "
                                           "recall, reference vs fused")
    d.add_argument("--tasks", default="copy,associative-recall",
                   help="comma-separated: copy (lag 10, 10 symbols, target 0.9), "
                        "associative-recall (2-6 items, target 0.5)")
    d.add_argument("--impls", default="reference,fused", help="reference, fused or both")
    d.add_argument("--max-seconds", type=float, default=900.0,
                   help="wall-time cap per run (default 900)")
    d.add_argument("--max-steps", type=int, default=20000, help="step cap (default 20000)")
    d.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    d.add_argument("--slots", type=int, default=128,
                   help="memory slots N (default 128, the NTM copy task's, Graves et al. 2014)")
    d.add_argument("--word", type=int, default=20, help="memory word size W (default 20)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--seeds", default="",
                   help="comma-separated seeds run one after the other (e.g. 0,1,2,3,4): adds "
                        "the comparison over seeds (medians, MLPerf's olympic mean) to the "
                        "report; overrides --seed")
    d.add_argument("--threads", default="",
                   help="torch threads when not --parallel: N for both impls, or per impl "
                        "(reference=1,fused=2: each at its fastest count on this machine); "
                        "default: torch's default")
    d.add_argument("--parallel", action="store_true",
                   help="train the impls at the same time, one process and thread each")
    d.add_argument("--step-time", type=int, default=0, metavar="ROUNDS",
                   help="instead of training to the target: time ROUNDS rounds of 10 training "
                        "steps of the reference, the fused per-step op and the fused "
                        "whole-sequence op, alternating; writes step_time.json")
    d.add_argument("--from", dest="from_reports", default="", metavar="REPORTS",
                   help="no training: re-analyse the runs recorded in these comma-separated "
                        "dnc_learn.json reports, pooled (e.g. two halves of a seed range)")
    d.add_argument("--out", default="", help="folder for dnc_learn.json and curves.png")
    d.set_defaults(func=bench_dnc_learn)

"""``dpbench bench dnc-twin``: reference and fused DNCs trained on identical batches from the
same initial parameters, their parameter distance step by step, against a one-ulp perturbed
control (engine: :mod:`dpbench.ops.dnc_twin`). Writes ``<out>/dnc_twin.json`` and
``<out>/distance.png``; ``--jobs 3`` trains the three pairs at once, one process and thread
each."""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from dpbench.params import UsageError

LEVELS = (1e-6, 1e-4, 1e-2)


def _run_pair(cfg_dict: dict, pair: str, steps: int, every: int, threads: int) -> dict:
    import torch

    from dpbench.ops.dnc_learn import LearnConfig
    from dpbench.ops.dnc_twin import growth_steps, twin

    if threads:
        torch.set_num_threads(threads)
    result = twin(LearnConfig(**cfg_dict), pair, steps, every,
                  log=lambda m: print(f"dpbench bench: {m}", file=sys.stderr, flush=True))
    return {**asdict(result), "steps_to": {f"{lv:g}": growth_steps(result, lv) for lv in LEVELS}}


def plot(results: list, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ax.semilogy(r["steps"], [max(d, 1e-17) for d in r["distance"]], label=r["pair"])
    ax.set(title=title, xlabel="training step", ylabel="‖θ_a − θ_b‖ / ‖θ_a‖")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def bench_dnc_twin(args: argparse.Namespace) -> int:
    from dpbench.ops.dnc_learn import TASKS, LearnConfig
    from dpbench.ops.dnc_twin import PAIRS

    if args.task not in TASKS:
        raise UsageError(f"unknown task {args.task!r}; choose from {', '.join(TASKS)}")
    pairs = [p for p in args.pairs.split(",") if p]
    if not pairs or (bad := [p for p in pairs if p not in PAIRS]):
        raise UsageError(f"unknown pair {(bad or [args.pairs])[0]!r}; choose from "
                         f"{', '.join(PAIRS)}")
    if args.steps < 1 or args.every < 1 or args.jobs < 1:
        raise UsageError(f"--steps={args.steps}, --every={args.every} and --jobs={args.jobs} "
                         f"must be >= 1")
    cfg = asdict(LearnConfig(task=args.task, seed=args.seed, slots=args.slots, word=args.word))
    threads = 1 if args.jobs > 1 else args.threads
    jobs = [(cfg, p, args.steps, args.every, threads) for p in pairs]
    if args.jobs > 1:
        import multiprocessing

        # spawn: fresh interpreters, no forked copy of this process's torch thread pools
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_run_pair, *zip(*jobs)))
    else:
        results = [_run_pair(*j) for j in jobs]
    table = {r["pair"]: {"final_distance": r["distance"][-1], "steps_to": r["steps_to"]}
             for r in results}
    print(json.dumps(table, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"config": cfg, "steps": args.steps, "summary": table, "pairs": results}
        (out / "dnc_twin.json").write_text(json.dumps(report, indent=1) + "\n")
        plot(results, out / "distance.png", f"{args.task}: twin training, seed {args.seed}")
    return 0


def add_parser(kinds) -> None:
    d = kinds.add_parser("dnc-twin", help="reference vs fused DNC trained on identical batches: "
                                          "parameter distance per step against a one-ulp control")
    d.add_argument("--task", default="associative-recall",
                   help="copy or associative-recall (dnc-learn's configuration, lesson 0)")
    d.add_argument("--pairs", default="float64,float32,control",
                   help="comma-separated: float64 (reference vs fused), float32 (the same), "
                        "control (reference vs reference with one-ulp perturbed init)")
    d.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    d.add_argument("--every", type=int, default=10, help="record every N steps (default 10)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--slots", type=int, default=128, help="memory slots N (default 128)")
    d.add_argument("--word", type=int, default=20, help="memory word size W (default 20)")
    d.add_argument("--jobs", type=int, default=1,
                   help="pairs trained at once, one process and thread each (default 1)")
    d.add_argument("--threads", type=int, default=0,
                   help="torch threads with --jobs 1 (default: torch's default)")
    d.add_argument("--out", default="", help="folder for dnc_twin.json and distance.png")
    d.set_defaults(func=bench_dnc_twin)

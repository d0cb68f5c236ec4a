"""The A/A and planted-change figures of docs/ci.md: ``dpbench abtest`` on a local clone.

    python tests/benchmarks/abtest_figures.py --plant none --reps 3 --out /tmp/ab-aa -- \\
        --suite smoke --models fnn,lstm,gru --datasets lorenz:length=600,window=16 --seeds 3

clones this repository's HEAD (``git clone --local``), optionally commits a planted change
on top, runs ``dpbench abtest BASE HEAD`` ``--reps`` times and prints, per repetition, the
exit code, the flagged comparisons (throughput by abtest's paired rule: ratio = geometric
mean of the per-seed ratios of trial medians, p of the one-sided t-test on their logs before
Holm, n pairs, sd of the log ratios) and the median per-pair spread per throughput metric
(feed it to ``tests/benchmarks/abtest_power.py``), then one JSON summary line. Plants:

* ``none``: A/A, the same revision on both sides;
* ``slow``: ``fnn``'s forward spins for a quarter of its own compute time (inference
  throughput × 1/1.25 = 0.8, a 20 % slowdown; training less, the backward is unchanged);
* ``acc``: ``gru`` trains for half the suite's steps (an accuracy drop).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PLANTS = {
    "slow": ("dpbench/models/_feedforward.py",
             "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        x = x[:, x.shape[1] - self.delays:]\n"
             "        return self.net(x.reshape(x.shape[0], -1)).view(x.shape[0], self.output_steps, self.output_size)\n",
             "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        import time\n"
             "        t0 = time.perf_counter()\n        x = x[:, x.shape[1] - self.delays:]\n"
             "        out = self.net(x.reshape(x.shape[0], -1)).view(x.shape[0], self.output_steps, self.output_size)\n"
             "        end = time.perf_counter() + 0.25 * (time.perf_counter() - t0)  # planted: +25 % forward time\n"
             "        while time.perf_counter() < end:\n            pass\n        return out\n"),
    "acc": ("dpbench/harness/trial.py",
            "    cfg, ecfg, device = trial.train, trial.eval, trial.device\n",
            "    cfg, ecfg, device = trial.train, trial.eval, trial.device\n"
            "    if trial.model == \"gru\":  # planted: half the training steps\n"
            "        from dataclasses import replace as _replace\n"
            "        cfg = _replace(cfg, steps=max(1, cfg.steps // 2))\n"),
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def make_clone(plant: str, where: Path) -> tuple[Path, str, str]:
    clone = where / "repo"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True)
    if plant == "none":
        return clone, "HEAD", "HEAD"
    path, old, new = PLANTS[plant]
    text = (clone / path).read_text()
    assert old in text, f"plant {plant}: pattern not found in {path}"
    (clone / path).write_text(text.replace(old, new))
    git(clone, "-c", "user.name=plant", "-c", "user.email=plant@example.invalid", "commit", "-qam", f"plant {plant}")
    return clone, "HEAD~1", "HEAD"


def flagged(out: Path) -> tuple[list[str], int, dict[str, float]]:
    """The flagged rows of one repetition (throughput: the paired rule's geometric-mean ratio,
    its p before Holm, the number of pairs and the sd of their log ratios), the number of
    comparisons, and per throughput metric the median over cells of that sd (the per-pair
    spread that sets the power, docs/ci.md)."""
    sys.path.insert(0, str(ROOT))
    from dpbench.abtest import abtest_rows, load_ab_docs
    from dpbench.compare import DEFAULT_ACC_TOLERANCE, DEFAULT_ALPHA, DEFAULT_THRESHOLD

    *docs, aligned = load_ab_docs(out)
    rows = abtest_rows(*docs, DEFAULT_THRESHOLD, DEFAULT_ALPHA, DEFAULT_ACC_TOLERANCE, aligned=aligned)
    spreads: dict[str, list[float]] = {}
    for r in rows:
        if r.spread is not None:
            spreads.setdefault(r.metric, []).append(r.spread)
    text = [f"{r.model} {r.dataset} {r.metric} {r.status} ratio {r.ratio:.3f} p {r.p_value or float('nan'):.2g} "
            f"n {r.n[0]}" + (f" sd {r.spread:.3f}" if r.spread is not None else "")
            for r in rows if r.status in ("regression", "improved")]
    return text, len(rows), {m: round(statistics.median(v), 4) for m, v in spreads.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plant", choices=["none", *PLANTS], default="none")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("abtest_args", nargs=argparse.REMAINDER, help="after --: arguments for dpbench abtest")
    args = ap.parse_args()
    extra = [a for a in args.abtest_args if a != "--"]
    summary = {"plant": args.plant, "args": extra, "reps": []}
    with tempfile.TemporaryDirectory() as tmp:
        clone, base, head = make_clone(args.plant, Path(tmp))
        for rep in range(args.reps):
            out = Path(args.out) / f"rep{rep}"
            load = os.getloadavg()[0]
            cmd = [sys.executable, "-m", "dpbench.cli", "abtest", base, head, "--repo", str(clone),
                   "--out", str(out), "--changes-only", *extra]
            proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
            rows, total, spread = flagged(out) if (out / "head" / "results.json").exists() \
                else (["no results"], 0, {})
            print(f"rep {rep}: exit {proc.returncode}, load {load:.1f} -> {os.getloadavg()[0]:.1f}, "
                  f"{len(rows)} flagged of {total}, median per-pair sd of log ratios {spread}", flush=True)
            for r in rows:
                print(f"  {r}", flush=True)
            if proc.returncode not in (0, 1):
                print(proc.stderr[-2000:], flush=True)
            summary["reps"].append({"exit": proc.returncode, "flagged": rows, "comparisons": total,
                                    "pair_sd": spread, "load_start": load, "load_end": os.getloadavg()[0]})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

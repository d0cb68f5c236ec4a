"""A/A noise of the CI gate: run the same small suite N times (same code, same machine),
calibrating around each run, and report the run-to-run spread of throughput with and
without calibration normalisation, plus how often ``dpbench compare`` flags a same-code pair.

    python tests/benchmarks/aa_spread.py --runs 3 --out /tmp/aa

Each run's ``results.json`` gets ``"calibration"`` = :func:`dpbench.calibration.calibrate`
(measured before and after the trials; samples pooled), the shape ``run_suite`` stores,
and every trial's ``info["calibration"]`` a short calibration measured right before and
after that trial (:class:`CalibratingExecutor`), which ``compare --normalize`` prefers.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

from dpbench.calibration import calibrate
from dpbench.compare import compare_docs, throughput_metrics
from dpbench.harness.executors import LocalExecutor
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import parse_suite
from dpbench.plugins import load_registry
from dpbench.results import load_results, trials_of

SUITE = {
    "name": "aa", "seeds": 1,
    "train": {"steps": 60, "batch_size": 32, "eval_every": 60, "param_budget": 5000},
    "eval": {"rollout_steps": 20, "rollout_starts": 2, "timing_repeats": 7},
    "block": [{"name": "f", "models": ["fnn", "lstm", "gru"], "datasets": ["lorenz:length=1000,window=16"]}],
}


class CalibratingExecutor(LocalExecutor):
    """The local executor plus a short calibration right before and after each trial."""

    def run(self, trials, registry, timeout, on_start, on_step):
        for trial in trials:
            before = calibrate(repeats=5, inner=2)
            outcome = next(super().run([trial], registry, timeout, on_start, on_step))
            after = calibrate(repeats=5, inner=2)
            samples = before["samples"] + after["samples"]
            outcome[1].info["calibration"] = {"median": statistics.median(samples), "samples": samples}
            yield outcome


def without_trial_calibration(doc: dict) -> dict:
    out = json.loads(json.dumps(doc))
    for t in out["trials"]:
        t["info"].pop("calibration", None)
    return out


def one_run(registry, out: Path) -> dict:
    before = calibrate()
    run_dir, _, _ = run_suite(parse_suite(SUITE, "aa"), registry, out=str(out), force=True, quiet=True,
                              executor=CalibratingExecutor())
    after = calibrate()
    samples = before["samples"] + after["samples"]
    doc = json.loads((run_dir / "results.json").read_text())
    doc["calibration"] = {**before, "samples": samples, "median": statistics.median(samples),
                          "before": before["median"], "after": after["median"]}
    (run_dir / "results.json").write_text(json.dumps(doc))
    return load_results(run_dir)


def spread(values: list[float]) -> tuple[float, float]:
    """(max − min) / median and the coefficient of variation, in %."""
    med = statistics.median(values)
    cv = statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0
    return 100 * (max(values) - min(values)) / med, 100 * cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default="/tmp/dpbench-aa")
    args = parser.parse_args()
    registry = load_registry()
    docs = [one_run(registry, Path(args.out) / f"run{i}") for i in range(args.runs)]
    cal = [d["calibration"]["median"] for d in docs]
    print(f"calibration medians ({docs[0]['calibration']['unit']}): " + ", ".join(f"{c:.1f}" for c in cal))
    header = ("raw", "run-calibrated", "trial-calibrated", "rel. lstm")
    print(f"{'model':6} {'metric':16} " + " ".join(f"{h + ' range/CV %':>27}" for h in header))
    medians = {(m, metric): [statistics.median(t.samples[metric]) for d in docs for t in trials_of(d) if t.model == m]
               for m, metric in itertools.product(("fnn", "lstm", "gru"), throughput_metrics())}
    per_trial = {(m, metric): [statistics.median(t.samples[metric]) / t.info["calibration"]["median"]
                               for d in docs for t in trials_of(d) if t.model == m]
                 for m, metric in medians}
    for (model, metric), raw in medians.items():
        run_norm = [r / c for r, c in zip(raw, cal)]
        rel = [r / ref for r, ref in zip(raw, medians[("lstm", metric)])]
        cells = [f"{a:.1f} / {b:.1f}" for a, b in (spread(raw), spread(run_norm), spread(per_trial[(model, metric)]),
                                                   spread(rel) if model != "lstm" else (0, 0))]
        print(f"{model:6} {metric:16} " + " ".join(f"{c:>27}" for c in cells))
    run_only = [without_trial_calibration(d) for d in docs]
    for label, pool, kw in (("raw", docs, {}), ("--normalize, run calibration", run_only, {"normalize": True}),
                            ("--normalize, trial calibration", docs, {"normalize": True}),
                            ("--relative-to lstm", docs, {"relative_to": "lstm"})):
        flagged = total = 0
        for a, b in itertools.permutations(pool, 2):
            rows = [r for r in compare_docs(a, b, **kw) if r.metric in throughput_metrics()]
            flagged += sum(r.regression for r in rows)
            total += len(rows)
        print(f"A/A comparisons flagged as regression ({label}): {flagged} of {total}")


if __name__ == "__main__":
    main()

"""Running a suite: plan trials, run each in isolation, write results as they finish."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from dpbench.calibration import calibrate
from dpbench.environment import environment
from dpbench.harness.suite import Suite, Trial, expand_trials
from dpbench.harness.executors import Executor, LocalExecutor
from dpbench.metrics import derived_metrics
from dpbench.params import UsageError
from dpbench.plugins import Registry
from dpbench.results import RunWriter, TrialResult

DEFAULT_OUT = Path("results") / "runs"


class Progress:
    """Live progress: one rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False,
                 headline: tuple[str, ...] = ()):
        self.total, self.stream, self.quiet = total, stream or sys.stderr, quiet
        self.headline = headline  # metrics shown after a finished trial, first present wins
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.index, self.label, self.steps = 0, "", 0

    def start(self, index: int, trial: Trial) -> None:
        self.index, self.label, self.steps = index, trial.label, trial.train.steps
        if not self.quiet and not self.tty:
            print(f"[{index}/{self.total}] {self.label} ...", file=self.stream, flush=True)

    def step(self, step: int, loss: float) -> None:
        if self.tty and not self.quiet:
            line = f"\r[{self.index}/{self.total}] {self.label}  step {step}/{self.steps}  loss {loss:.4g}"
            print(line[:160].ljust(160), end="", file=self.stream, flush=True)

    def done(self, trial: Trial, result: TrialResult) -> None:
        if self.quiet:
            return
        m = result.metrics
        key = next((k for k in self.headline if k in m), None)
        what = f"{key}={m[key]:.4g}" if key and m.get(key) is not None else ""
        status = result.status if result.status == "ok" else f"{result.status.upper()}: {result.error}"
        text = f"[{self.index}/{self.total}] {trial.label}: {status} {what}".rstrip()
        print(("\r" + text.ljust(160)) if self.tty else text, file=self.stream, flush=True)


def new_run_dir(out: str | None, force: bool) -> Path:
    """The run directory: ``out`` or ``results/runs/<timestamp>``; refuses to reuse a
    directory that already holds a run unless ``force``."""
    path = Path(out) if out else DEFAULT_OUT / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if path.exists() and any(path.iterdir()) and not force:
        raise UsageError(f"output directory {str(path)!r} is not empty; use --resume {path} or --force")
    if path.exists() and not path.is_dir():
        raise UsageError(f"output path {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {str(path)!r}: {exc.strerror}") from None
    if force:
        for name in ("trials.jsonl", "results.csv", "results.json"):
            (path / name).unlink(missing_ok=True)
    return path


def save_artifacts(run_dir: Path, result: TrialResult, artifacts: dict[str, Any]) -> list[str]:
    """Diagnostics → ``diagnostics/<stem>.npz`` plus PNG maps; a forecast rollout →
    ``forecasts/<stem>.npz`` (``pred``, ``truth`` ``[steps, D_out]``, normalised units)."""
    stem = f"{result.model}-{result.dataset}-{result.trial_id}"
    written: list[str] = []
    if artifacts.get("rollout") is not None:
        folder = run_dir / "forecasts"
        folder.mkdir(exist_ok=True)
        np.savez_compressed(folder / f"{stem}.npz", **{k: v.numpy() for k, v in artifacts["rollout"].items()})
    diag = artifacts.get("diagnostics")
    if diag:
        folder = run_dir / "diagnostics"
        folder.mkdir(exist_ok=True)
        np.savez_compressed(folder / f"{stem}.npz", **{k: v.numpy() for k, v in diag.items()})
        from dpbench.report.diagnostics import plot_diagnostics

        title = f"{result.model} on {result.dataset}"
        written += [str(p) for p in plot_diagnostics(diag, folder, stem, title=title)]
    return written


def run_trials(trials: list[Trial], registry: Registry, run_dir: Path, writer: RunWriter,
               timeout: float | None, quiet: bool = False, executor: Executor | None = None) -> list[TrialResult]:
    """Run the trials not yet in ``writer``; each result is written as soon as it exists."""
    todo = [t for t in trials if t.trial_id not in writer.finished_ids]
    headline = tuple(s.name for s in registry.metrics_where(table="accuracy", gate="accuracy"))
    progress = Progress(len(trials), quiet=quiet, headline=headline)
    counter = iter(range(len(trials) - len(todo) + 1, len(trials) + 1))
    results = []
    executor = executor or LocalExecutor()
    for trial, result, artifacts in executor.run(todo, registry, timeout,
                                                 lambda t: progress.start(next(counter), t), progress.step):
        if result.status == "ok":
            try:
                files = save_artifacts(run_dir, result, artifacts)
                if files:
                    result.info["figures"] = files
            except Exception as exc:  # a failed plot must not lose the trial
                result.info["artifact_error"] = f"{type(exc).__name__}: {exc}"
        writer.append(result)
        progress.done(trial, result)
        results.append(result)
    return results


def run_suite(suite: Suite, registry: Registry, out: str | None = None, force: bool = False,
              resume: str | None = None, timeout: float | None = None, quiet: bool = False,
              options: dict[str, Any] | None = None,
              executor: Executor | None = None) -> tuple[Path, RunWriter, list[str]]:
    """Run (or resume) ``suite``; returns the run directory, its writer and notes."""
    trials, notes = expand_trials(suite, registry, torch.cuda.is_available())
    if not trials:
        raise UsageError("the suite selects no trials")
    if resume:
        run_dir = Path(resume)
    else:
        run_dir = new_run_dir(out, force)
    config = {"suite": suite.to_dict(), "options": options or {},
              "trials": [t.trial_id for t in trials]}
    if not resume:
        (run_dir / "config.json").write_text(json.dumps(config, indent=1, default=str))
    run_id = run_dir.name
    writer = RunWriter(run_dir, run_id, config, environment())
    if writer.calibration is None:  # kept from the first session on --resume
        writer.calibration = calibrate()
    for note in notes:
        print(f"dpbench: note: {note}", file=sys.stderr)
    if not quiet:
        print(f"dpbench: {len(trials)} trials ({len(writer.finished_ids & set(config['trials']))} already done) "
              f"-> {run_dir}", file=sys.stderr)
    try:
        run_trials(trials, registry, run_dir, writer, timeout, quiet, executor)
    except KeyboardInterrupt:
        writer.reload()
        writer.derived = derived_metrics(writer.trials, registry)
        writer.write()
        print(f"\ndpbench: interrupted; finished trials are saved. Resume with: dpbench run --resume {run_dir}",
              file=sys.stderr)
        raise
    writer.derived = derived_metrics(writer.trials, registry)
    writer.write()
    return run_dir, writer, notes


def load_run_config(run_dir: str) -> dict[str, Any]:
    """The resolved config of an earlier run (for ``--resume``)."""
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"--resume {run_dir!r}: no readable config.json ({exc.__class__.__name__})") from None

"""Running a suite: plan trials, run each in isolation, write results as they finish."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpbench.calibration import calibrate
from dpbench.environment import busy_warning, environment, load_average
from dpbench.harness.progress import Progress
from dpbench.harness.suite import Suite, Trial, expand_trials, identical_groups
from dpbench.metrics import derived_metrics
from dpbench.harness.executors import Executor, LocalExecutor
from dpbench.params import UsageError
from dpbench.plugins import Registry
from dpbench.results import RunWriter, TrialResult

DEFAULT_OUT = Path("results") / "runs"


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
    if force:  # a fresh run: nothing of the old one may leak in, tuning studies included
        from dpbench.harness.tuning import TUNING_DIR

        for name in ("trials.jsonl", "results.csv", "results.json"):
            (path / name).unlink(missing_ok=True)
        shutil.rmtree(path / TUNING_DIR, ignore_errors=True)
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
        from dpbench.report.tables import label

        title = f"{label(result.model, result.model_params)} on {label(result.dataset, result.dataset_params)}"
        written += [str(p) for p in plot_diagnostics(diag, folder, stem, title=title)]
    return written


def copy_result(result: TrialResult, member: Trial, ran: Trial) -> TrialResult:
    """``result`` of ``ran`` reported as ``member``, an identical trial of another block
    (or written with default parameters spelled out): its id, parameters and block."""
    return replace(result, trial_id=member.trial_id, model_params=dict(member.model_params),
                   dataset_params=dict(member.dataset_params), block=member.block,
                   info={**result.info, "block": member.block, "same_as": f"{ran.trial_id} [{ran.block}]"})


def _record(run_dir: Path, writer: RunWriter, result: TrialResult, artifacts: dict[str, Any]) -> None:
    if result.status == "ok" and artifacts:
        try:
            files = save_artifacts(run_dir, result, artifacts)
            if files:
                result.info["figures"] = files
        except Exception as exc:  # a failed plot must not lose the trial
            result.info["artifact_error"] = f"{type(exc).__name__}: {exc}"
    writer.append(result)


def run_trials(trials: list[Trial], registry: Registry, run_dir: Path, writer: RunWriter,
               timeout: float | None, quiet: bool = False, executor: Executor | None = None,
               progress: Progress | None = None,
               extra_metrics: dict[str, dict[str, float]] | None = None) -> list[TrialResult]:
    """Run the trials not yet in ``writer``, each distinct one once (see
    :func:`~dpbench.harness.suite.identical_groups`); each result is written, for every
    block that lists the trial, as soon as it exists. ``extra_metrics`` (by trial id) are
    added to a result's metrics (the tuning effort)."""
    finished = {(t.trial_id, t.block): t for t in writer.trials}
    groups = identical_groups(trials, registry)
    todo: dict[str, list[Trial]] = {}
    for group in groups:
        missing = [m for m in group if (m.trial_id, m.block) not in finished]
        done = next((finished[(m.trial_id, m.block)] for m in group if (m.trial_id, m.block) in finished), None)
        if done is not None:  # resumed: report the finished copy for the members still missing
            ran = next(m for m in group if (m.trial_id, m.block) == (done.trial_id, done.block))
            for m in missing:
                _record(run_dir, writer, copy_result(done, m, ran), {})
        elif missing:
            todo[missing[0].trial_id + "\0" + missing[0].block] = missing
    own = progress is None
    progress = progress or Progress(len(groups), quiet=quiet, done_before=len(groups) - len(todo))
    counter = iter(range(len(groups) - len(todo) + 1, len(groups) + 1))
    results = []
    executor = executor or LocalExecutor()
    try:
        outcomes = executor.run([g[0] for g in todo.values()], registry, timeout,
                                lambda t: progress.start(next(counter), t), progress.step)
        for trial, result, artifacts in outcomes:
            group = todo[trial.trial_id + "\0" + trial.block]
            result.metrics.update((extra_metrics or {}).get(trial.trial_id, {}))
            for member in group:
                copy = result if member is trial else copy_result(result, member, trial)
                _record(run_dir, writer, copy, artifacts)
                results.append(copy)
            progress.done(trial, result, copies=len(group) - 1)
    finally:
        if own:
            progress.close()
    return results


def tune(trials: list[Trial], suite: Suite, registry: Registry, run_dir: Path, writer: RunWriter,
         timeout: float | None, quiet: bool, executor: Executor, width: int
         ) -> tuple[list[Trial], dict[str, dict[str, float]]]:
    """Run the tuning studies of ``suite``'s tuned blocks (:mod:`dpbench.harness.tuning`);
    returns the trials to run (untuned ones and finals on the chosen values) and the tuning
    metrics per final trial id. A study with no completed trial is written as ``diverged``."""
    from dpbench.harness import tuning

    plain, studies = tuning.plan_studies(trials, suite, run_dir, registry)
    if not studies:
        return trials, {}
    total = sum(s.remaining() for s in studies)
    if not quiet and total:
        print(f"dpbench: tuning {len(studies)} studies, {total} tuning trials -> {run_dir / tuning.TUNING_DIR}",
              file=sys.stderr)
    counter = iter(range(1, total + 1))
    with Progress(total, quiet=quiet) as progress:
        tuning.run_studies(studies, executor, registry, timeout, width,
                           lambda t: progress.start(next(counter), t), progress.step, progress.done)
    finals, failed, extra = tuning.final_trials(studies)
    finished = {(t.trial_id, t.block) for t in writer.trials}
    for result in failed:
        if (result.trial_id, result.block) not in finished:
            writer.append(result)
    return plain + finals, extra


def trial_threads(executor: Executor | None) -> dict[str, Any]:
    """``workers`` and ``torch_threads`` the trials run with (the parent's own thread count
    is not what a worker process or a Ray task uses)."""
    if getattr(executor, "jobs", 1) > 1:
        from dpbench.harness._pool import worker_threads

        return {"workers": executor.jobs, "torch_threads": worker_threads(executor.jobs)}
    if hasattr(executor, "num_cpus"):
        return {"workers": "ray", "torch_threads": max(1, int(executor.num_cpus))}
    return {"workers": 1}


def run_suite(suite: Suite, registry: Registry, out: str | None = None, force: bool = False,
              resume: str | None = None, timeout: float | None = None, quiet: bool = False,
              options: dict[str, Any] | None = None,
              executor: Executor | None = None, jobs: int = 1) -> tuple[Path, RunWriter, list[str]]:
    """Run (or resume) ``suite``; returns the run directory, its writer and notes. Tuned
    blocks are tuned first, ``jobs`` trials of a study at a time."""
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
    writer.environment.update(trial_threads(executor))
    warning = busy_warning(writer.environment.get("load_start"), writer.environment.get("cpu_count"))
    if warning:
        print(warning, file=sys.stderr)
    if writer.calibration is None:  # kept from the first session on --resume
        writer.calibration = calibrate()
    for note in notes:
        print(f"dpbench: note: {note}", file=sys.stderr)
    if not quiet:
        distinct = len(identical_groups(trials, registry))
        done = len({(t.trial_id, t.block) for t in writer.trials} & {(t.trial_id, t.block) for t in trials})
        same = f", {distinct} distinct: identical ones run once" if distinct < len(trials) else ""
        print(f"dpbench: {len(trials)} trials{same} ({done} already done) -> {run_dir.resolve()}",
              file=sys.stderr)
    executor = executor or LocalExecutor()
    try:
        trials, extra = tune(trials, suite, registry, run_dir, writer, timeout, quiet, executor, jobs)
        run_trials(trials, registry, run_dir, writer, timeout, quiet, executor, extra_metrics=extra)
    except KeyboardInterrupt:
        writer.reload()
        writer.derived = derived_metrics(writer.trials, registry)
        writer.environment["load_end"] = load_average()
        writer.write()
        print(f"\ndpbench: interrupted; finished trials are saved. Resume with: dpbench run --resume {run_dir}",
              file=sys.stderr)
        raise
    writer.derived = derived_metrics(writer.trials, registry)
    writer.environment["load_end"] = load_average()
    writer.write()
    return run_dir, writer, notes


def load_run_config(run_dir: str) -> dict[str, Any]:
    """The resolved config of an earlier run (for ``--resume``)."""
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"--resume {run_dir!r}: no readable config.json ({exc.__class__.__name__})") from None

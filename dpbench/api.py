"""The notebook API: run a suite and read its results without the CLI.

>>> import dpbench
>>> res = dpbench.run(models=["lstm", "transformer"], datasets="lorenz", suite="smoke", seeds=2)
>>> df = res.to_pandas()          # tidy: one row per trial and metric
>>> print(res.summary())          # the terminal summary
>>> res.report("lorenz.md")       # Markdown report with figures next to it
>>> again = dpbench.load(res.run_dir)

:func:`run` does what ``dpbench run`` does (same suites, overrides, run directory,
progress display on stderr) and returns a :class:`Results`; :func:`load` reads a finished
(or interrupted) run directory. Bad names or values raise
:class:`dpbench.params.UsageError` naming the valid choices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dpbench.results import TrialResult, load_results, trial_rows, trials_of


def _items(value: str | Iterable[str] | None) -> str | None:
    """A comma-separated string from a string or a list of ``name:params`` items."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


@dataclass
class Results:
    """A run's results: the run directory, its trials and the derived metrics."""

    run_dir: Path
    trials: list[TrialResult]
    derived: list[dict[str, Any]] = field(default_factory=list)
    doc: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_pandas(self):
        """The tidy table: one row per (trial, metric) with the columns of ``results.csv``
        plus ``block``; derived metrics (``max_lag_at_90``) are rows with an empty
        ``trial_id``."""
        import pandas as pd

        from dpbench.results import CSV_COLUMNS

        run_id = self.doc.get("run_id", self.run_dir.name)
        rows = [{**r, "block": t.block} for t in self.trials for r in trial_rows(run_id, t)]
        rows += [{"run_id": run_id, "trial_id": "", **d} for d in self.derived]
        columns = [*CSV_COLUMNS, "block"]
        return pd.DataFrame([{k: r.get(k) for k in columns} for r in rows], columns=columns)

    def summary(self, width: int = 120) -> str:
        """The terminal summary (per-dataset tables, long-dependency table, failures)."""
        from dpbench.report.terminal import summary_text

        return summary_text(self.trials, self.derived, width)

    def report(self, path: str | Path | None = None, title: str | None = None) -> Path:
        """Write the Markdown report (default ``RUN_DIR/report.md``); returns its path.
        Figures go to ``RUN_DIR/figures/``, linked relative to the report."""
        from dpbench.report.build import write_report

        out, _ = write_report(self.run_dir, Path(path) if path else None, title)
        return out.resolve()

    def __repr__(self) -> str:
        ok = sum(t.status == "ok" for t in self.trials)
        return f"Results({str(self.run_dir)!r}, {len(self.trials)} trials, {ok} ok)"


def load(run_dir: str | Path) -> Results:
    """The results of a run directory (or its ``results.json``)."""
    path = Path(run_dir)
    doc = load_results(path)
    folder = path.parent if path.is_file() else path
    return Results(folder.resolve(), trials_of(doc), list(doc.get("derived", [])), doc)


def run(models: str | Iterable[str] | None = None, datasets: str | Iterable[str] | None = None,
        suite: str = "default", *, seeds: int | None = None, device: str | None = None,
        steps: int | None = None, out: str | Path | None = None, force: bool = False,
        trial_timeout: float | None = None, executor: str = "local", jobs: int = 1,
        quiet: bool = False, registry: Any = None) -> Results:
    """Run ``suite`` (a built-in name or a ``.toml`` path) like ``dpbench run``.

    Args:
        models, datasets: replace every block's lists, as ``--models``/``--datasets``: a
            comma-separated string or a list of items such as ``"lstm:hidden=32"``.
        seeds, device, steps: as ``--seeds``, ``--device`` (``cpu``, ``cuda``, ``all``),
            ``--steps``.
        out: the run directory (default ``results/runs/<timestamp>``); ``force`` reuses a
            non-empty one.
        trial_timeout, executor, jobs: as ``--trial-timeout``, ``--executor``, ``--jobs``.
        quiet: no progress display.
        registry: a :class:`dpbench.plugins.Registry` (default: built-ins and installed
            plugins).
    """
    from dpbench.harness.executors import make_executor
    from dpbench.harness.runner import run_suite
    from dpbench.harness.suite import load_suite, override
    from dpbench.plugins import get_registry

    plan = override(load_suite(suite), _items(models), _items(datasets), seeds, device, steps)
    options = {"trial_timeout": trial_timeout, "allow_failures": True, "api": True}
    run_dir, writer, _ = run_suite(plan, registry or get_registry(), out=str(out) if out else None,
                                   force=force, timeout=trial_timeout, quiet=quiet, options=options,
                                   executor=make_executor(executor, jobs))
    return Results(Path(run_dir).resolve(), list(writer.trials), list(writer.derived),
                   {"run_id": writer.run_id})

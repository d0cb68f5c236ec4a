"""Result schema, durable writers and validating readers.

A run directory holds:

* ``config.json`` — the fully resolved suite and CLI options (read back by ``--resume``);
* ``trials.jsonl`` — one JSON line per finished trial, appended, flushed and fsync'ed the
  moment the trial ends (a crash leaves at most one torn last line, which readers skip);
* ``results.csv`` — tidy long format, one row per (trial, metric), columns
  :data:`CSV_COLUMNS`; derived metrics over seeds/sweeps (e.g. ``max_lag_at_90``) have an
  empty ``seed`` and ``trial_id``;
* ``results.json`` — ``{"schema_version", "run_id", "environment", "config",
  "calibration", "records", "derived", "trials"}`` where ``trials`` keep the raw timing
  samples and ``calibration`` the machine-speed workload measured before the trials
  (:mod:`dpbench.calibration`, used by ``dpbench compare --normalize``).

Both result files are rewritten atomically (write, fsync, rename) after every trial.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dpbench.params import UsageError, format_params

SCHEMA_VERSION = 1
CSV_COLUMNS = ["run_id", "trial_id", "model", "model_params", "dataset", "dataset_params",
               "seed", "device", "status", "metric", "value"]
STATUSES = ("ok", "failed", "diverged", "oom", "timeout")


@dataclass
class TrialResult:
    """Everything measured in one trial."""

    trial_id: str
    model: str
    model_params: dict[str, Any]
    dataset: str
    dataset_params: dict[str, Any]
    seed: int
    device: str
    status: str = "ok"
    error: str | None = None
    block: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialResult":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def dataset_label(t: TrialResult) -> str:
    """``dataset:params [block]``: the comparison a trial belongs to. The block is part of
    it because two blocks may run the same dataset under different training budgets."""
    text = t.dataset + (f":{format_params(t.dataset_params)}" if t.dataset_params else "")
    return f"{text} [{t.block}]" if t.block else text


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a fsync'ed temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def trial_rows(run_id: str, t: TrialResult) -> list[dict[str, Any]]:
    base = {"run_id": run_id, "trial_id": t.trial_id, "model": t.model,
            "model_params": format_params(t.model_params), "dataset": t.dataset,
            "dataset_params": format_params(t.dataset_params), "seed": t.seed,
            "device": t.device, "status": t.status}
    return [{**base, "metric": k, "value": v} for k, v in sorted(t.metrics.items())]


class RunWriter:
    """Appends trials durably and keeps ``results.csv``/``results.json`` current."""

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any], environment: dict[str, Any]):
        self.run_dir, self.run_id = Path(run_dir), run_id
        self.config, self.environment = config, environment
        self.trials: list[TrialResult] = []
        self.derived: list[dict[str, Any]] = []
        self.calibration: dict[str, Any] | None = None
        if (self.run_dir / "results.json").exists():
            try:
                self.calibration = json.loads((self.run_dir / "results.json").read_text()).get("calibration")
            except (OSError, json.JSONDecodeError, AttributeError):
                self.calibration = None
        if (self.run_dir / "trials.jsonl").exists():
            self.trials = read_trials(self.run_dir)
            # drop a torn last line (a crash mid-write) so appends start on a clean line
            text = "".join(json.dumps(_clean(asdict(t)), sort_keys=True) + "\n" for t in self.trials)
            atomic_write(self.run_dir / "trials.jsonl", text)

    def reload(self) -> None:
        """Take the trials from ``trials.jsonl``, the durable log: after an interrupt that
        landed between a trial's fsync and its in-memory append, the files agree again."""
        if (self.run_dir / "trials.jsonl").exists():
            self.trials = read_trials(self.run_dir)

    @property
    def finished_ids(self) -> set[str]:
        return {t.trial_id for t in self.trials}

    def append(self, result: TrialResult) -> None:
        """Append one trial durably (flush + fsync), then refresh the result files."""
        line = json.dumps(_clean(asdict(result)), sort_keys=True)
        with open(self.run_dir / "trials.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.trials.append(result)
        self.write()

    def write(self) -> None:
        rows = [r for t in self.trials for r in trial_rows(self.run_id, t)]
        rows += [{"run_id": self.run_id, "trial_id": "", **d} for d in self.derived]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
        atomic_write(self.run_dir / "results.csv", buf.getvalue())
        doc = {
            "schema_version": SCHEMA_VERSION, "run_id": self.run_id,
            "environment": self.environment, "config": self.config, "calibration": self.calibration,
            "records": [r for t in self.trials for r in trial_rows(self.run_id, t)],
            "derived": self.derived, "trials": [asdict(t) for t in self.trials],
        }
        atomic_write(self.run_dir / "results.json", json.dumps(_clean(doc), indent=1, sort_keys=True))


def read_trials(run_dir: Path) -> list[TrialResult]:
    """Trials from ``trials.jsonl``; a torn (unparsable) line is skipped."""
    out: list[TrialResult] = []
    path = Path(run_dir) / "trials.jsonl"
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(TrialResult.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue
    return out


def _require(cond: bool, path: str, what: str) -> None:
    if not cond:
        raise UsageError(f"{path}: not a dpbench results file ({what})")


def load_results(path_like: str | Path) -> dict[str, Any]:
    """Read and validate a run's ``results.json`` (given the file or its run directory).

    Raises :class:`UsageError` (one line) for a missing, unreadable or malformed file.
    """
    path = Path(path_like)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if not Path(path_like).exists():
            raise UsageError(f"cannot read results {str(path_like)!r}: no such run directory or file") from None
        if not path.exists():
            raise UsageError(f"cannot read results {str(path_like)!r}: no results.json there (not a run directory)") from None
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise UsageError(f"cannot read results {str(path_like)!r}: {reason}") from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UsageError(f"{path}: not valid JSON") from None
    p = str(path)
    _require(isinstance(doc, dict), p, "top level is not an object")
    _require(doc.get("schema_version") == SCHEMA_VERSION, p, f"schema_version must be {SCHEMA_VERSION}")
    trials = doc.get("trials")
    _require(isinstance(trials, list), p, "'trials' is not a list")
    for t in trials:
        _require(isinstance(t, dict), p, "a trial is not an object")
        for key, kind in (("model", str), ("dataset", str), ("device", str), ("metrics", dict),
                          ("samples", dict), ("status", str)):
            _require(isinstance(t.get(key), kind), p, f"trial field {key!r} missing or mistyped")
        _require(isinstance(t.get("seed"), int) and not isinstance(t.get("seed"), bool), p, "trial seed is not an int")
        for k, v in t["metrics"].items():
            _require(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)), p, f"metric {k!r} not a number")
        for k, v in t["samples"].items():
            _require(isinstance(v, list) and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in v),
                     p, f"samples {k!r} not a list of numbers")
    return doc


def trials_of(doc: dict[str, Any]) -> list[TrialResult]:
    return [TrialResult.from_dict(t) for t in doc["trials"]]


def records_frame(trials: Iterable[TrialResult]):
    """A pandas DataFrame of tidy records (one row per trial and metric)."""
    import pandas as pd

    rows = [r for t in trials for r in trial_rows("", t)]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)

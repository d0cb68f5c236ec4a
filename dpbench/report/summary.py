"""The run's terminal summary: mean ± std over seeds per (dataset, model, device) of every
registered metric shown in the accuracy and long-term tables, plus the cost columns.
The columns come from the metric registry (:class:`dpbench.specs.MetricSpec`), nothing else."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from dpbench.metrics import format_mean_std, mean_std
from dpbench.params import format_params, natural_key
from dpbench.plugins import Registry, get_registry
from dpbench.report.tables import column_title, metric_keys, trial_kind
from dpbench.results import TrialResult, dataset_label

#: (summary table name, task kind, report table of its metric columns)
SUMMARY_TABLES = (("forecast", "forecast", "accuracy"), ("recall", "recall", "accuracy"),
                  ("forecast long-term statistics", "forecast", "long_term"))


def summary_rows(trials: Iterable[TrialResult], registry: Registry | None = None
                 ) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per summary table: headers and rows of mean ± std over seeds per (dataset, model, device)."""
    registry = registry or get_registry()
    trials = list(trials)
    groups: dict[tuple, list[TrialResult]] = defaultdict(list)
    for t in trials:
        mlabel = t.model + (f":{format_params(t.model_params)}" if t.model_params else "")
        groups[(trial_kind(t, registry), dataset_label(t), mlabel, t.device)].append(t)
    cost = [s.name for s in registry.metrics_where(table="cost")]
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    for name, kind, table in SUMMARY_TABLES:
        keys = sorted((k for k in groups if k[0] == kind), key=lambda k: [natural_key(str(p)) for p in k])
        used = metric_keys([t for k in keys for t in groups[k]], registry, kind, table)
        if not used:
            continue
        columns = used + (cost if table == "accuracy" else [])
        headers = ["dataset", "model", "device", "seeds", *(column_title(c, registry) for c in columns)]
        rows = []
        for key in keys:
            ts = [t for t in groups[key] if t.status == "ok"]
            row = [key[1], key[2], key[3], str(len(ts))]
            for c in columns:
                row.append(format_mean_std(*mean_std(t.metrics.get(c, float("nan")) for t in ts)))
            rows.append(row)
        if rows:
            tables[name] = (headers, rows)
    return tables


def failures(trials: Iterable[TrialResult]) -> list[TrialResult]:
    return [t for t in trials if t.status != "ok"]

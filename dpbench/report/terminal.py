"""The run's terminal summary, compact enough for a 120-column terminal.

One small table per dataset (and block) instead of one wide table: the dataset label
becomes the table's heading, the device and seed columns are dropped when they are the
same on every row, headers are abbreviated, ``± 0`` is dropped when every row has one
seed, and a table still wider than ``width`` is split into a quality and a cost table.
Models outside their parameter budget (``budget_ok = 0``) are starred, and the metrics a
model computes itself (registered in table ``"model"``, e.g. the hybrid's recovered
``sigma_hat``) get a table of their own.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from tabulate import tabulate

from dpbench.metrics import format_mean_std, mean_std
from dpbench.params import format_params
from dpbench.plugins import get_registry
from dpbench.report.summary import failures, summary_rows
from dpbench.report.tables import column_title, model_metric_values
from dpbench.results import TrialResult, dataset_label

WIDTH = 120
OVER_BUDGET = "*"


def cost_titles() -> set[str]:
    """Column titles of the registered cost metrics (split off when a table is too wide)."""
    return {s.title for s in get_registry().metrics_where(table="cost")}


def model_label(t: TrialResult) -> str:
    return t.model + (f":{format_params(t.model_params)}" if t.model_params else "")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    return tabulate(rows, headers=headers, disable_numparse=True)


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _drop_constant(headers: list[str], rows: list[list[str]], name: str) -> tuple[str | None, list[str], list[list[str]]]:
    """Remove column ``name`` when every row has the same value; return that value."""
    if name not in headers:
        return None, headers, rows
    i = headers.index(name)
    values = {r[i] for r in rows}
    if len(values) != 1:
        return None, headers, rows
    return values.pop(), headers[:i] + headers[i + 1:], [r[:i] + r[i + 1:] for r in rows]


def _fit(headers: list[str], rows: list[list[str]], width: int) -> list[str]:
    """The table, or a quality and a cost table when it is wider than ``width``."""
    whole = _table(headers, rows)
    cost = [i for i, h in enumerate(headers) if h in cost_titles()]
    if _width(whole) <= width or not cost or len(cost) == len(headers) - 1:
        return [whole]
    quality = [i for i in range(len(headers)) if i not in cost]
    return [_table([headers[i] for i in part], [[r[i] for i in part] for r in rows])
            for part in (quality, [0, *cost])]


def dataset_tables(trials: list[TrialResult], width: int = WIDTH) -> list[str]:
    """The mean ± std tables, one per dataset (and block)."""
    over = {(dataset_label(t), model_label(t), t.device) for t in trials
            if t.status == "ok" and t.metrics.get("budget_ok") == 0}
    out: list[str] = []
    for kind, (headers, rows) in summary_rows(trials).items():
        by_dataset: dict[str, list[list[str]]] = defaultdict(list)
        for row in rows:
            label, model, device = row[0], row[1], row[2]
            mark = OVER_BUDGET if (label, model, device) in over else ""
            by_dataset[label].append([model + mark, *row[2:]])
        for label, group in by_dataset.items():
            heads = ["model", *headers[2:]]
            device, heads, group = _drop_constant(heads, group, "device")
            seeds, heads, group = _drop_constant(heads, group, "seeds")
            keep = [i for i in range(len(heads)) if i == 0 or any(r[i] != "-" for r in group)]
            heads, group = [heads[i] for i in keep], [[r[i] for i in keep] for r in group]
            if seeds == "1":
                group = [[c.removesuffix(" ± 0") for c in r] for r in group]
            facts = ", ".join(f for f in (device, f"{seeds} seed{'s' * (seeds != '1')}" if seeds else "") if f)
            spread = "" if seeds == "1" else ", mean ± std over seeds"
            heading, note = f"{kind}: {label}", f"({facts}{spread})"
            out.extend([f"{heading} {note}"] if len(heading) + len(note) < width else [heading, f"  {note}"])
            out.extend(_fit(heads, group, width))
            out.append("")
    if over:
        out.append(f"{OVER_BUDGET} outside the parameter budget (budget_ok = 0): a model whose size "
                   "the width cannot reach, compared at its own size")
        out.append("")
    return out


def model_metric_lines(trials: Iterable[TrialResult]) -> list[str]:
    """The metrics models compute themselves (registered in table ``"model"``, e.g. the
    hybrid's recovered ``sigma_hat``), under their registered titles; mean ± std over seeds."""
    registry = get_registry()
    values = model_metric_values(trials, registry)
    if not values:
        return []
    single = all(len(v) == 1 for v in values.values())
    rows = [[d, m, dev, column_title(key, registry), format_mean_std(v[0]) if single else format_mean_std(*mean_std(v))]
            for (d, m, dev, key), v in values.items()]
    device, headers, rows = _drop_constant(["dataset", "model", "device", "metric", "value"], rows, "device")
    heading = "model-specific metrics" + (f" ({device})" if device else "")
    return [heading + ("" if single else " (mean ± std over seeds)"), _table(headers, rows), ""]


def derived_lines(derived: list[dict[str, Any]]) -> list[str]:
    if not derived:
        return []
    rows = [[d["dataset"], d.get("block", ""), d["model"] + (f":{d['model_params']}" if d["model_params"] else ""),
             d["device"], d["metric"], format_mean_std(d["value"]), ",".join(f"{x:g}" for x in d["lags"])]
            for d in derived]
    headers = ["dataset", "block", "model", "device", "metric", "value", "lags"]
    device, headers, rows = _drop_constant(headers, rows, "device")
    return [f"long-dependency recall{f' ({device})' if device else ''}", _table(headers, rows), ""]


def failure_lines(trials: Iterable[TrialResult]) -> list[str]:
    failed = failures(trials)
    if not failed:
        return []
    return [f"{len(failed)} trial(s) did not finish ok:",
            *(f"  {t.status}: {t.model} on {dataset_label(t)} seed {t.seed} {t.device}: {t.error}" for t in failed), ""]


def relative_lines(trials: Iterable[TrialResult], width: int = WIDTH) -> list[str]:
    """Forecasters' VPT and NRMSE relative to ngrc and persistence (:func:`relative_table`),
    the device column dropped when constant, split by metric when wider than ``width``."""
    from dpbench.report.tables import relative_table

    table = relative_table(trials)
    if table is None:
        return []
    device, headers, rows = _drop_constant(*table, "device")
    title = ("forecasting relative to ngrc and persistence (VPT, one-step NRMSE; ratios of seed means"
             + (f", {device})" if device else ")"))
    whole = _table(headers, rows)
    if _width(whole) <= width:
        return [title, whole, ""]
    keys = 3 if device is None else 2
    parts = [[i for i in range(keys)] + [i for i in range(keys, len(headers)) if headers[i].startswith(p)]
             for p in ("VPT", "NRMSE")]
    return [title, *(_table([headers[i] for i in part], [[r[i] for i in part] for r in rows])
                     for part in parts if len(part) > keys), ""]


def summary_text(trials: list[TrialResult], derived: list[dict[str, Any]] | None = None,
                 width: int = WIDTH) -> str:
    """Every part of the terminal summary, joined."""
    lines = [*dataset_tables(trials, width), *relative_lines(trials, width), *model_metric_lines(trials),
             *derived_lines(derived or []), *failure_lines(trials)]
    return "\n".join(lines).rstrip() + "\n"

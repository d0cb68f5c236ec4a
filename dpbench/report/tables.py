"""Report tables from trials: accuracy, valid prediction time and long-term statistics
(mean ± std over seeds, best marked), the long-dependency ``max_lag_at_90`` table, and cost
(throughput, memory, speedup vs ``lstm``). Which metric goes in which table, its title and
its direction come from the metric registry (:class:`dpbench.specs.MetricSpec` ``table``,
``title``, ``higher_is_better``), nothing else.

Every function takes :class:`dpbench.results.TrialResult` objects and returns
``(headers, rows)`` of strings, rendered by :func:`render` as Markdown (``pipe``) or for a
terminal (``simple``). Failed trials and missing metrics are skipped, never fatal.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable

from tabulate import tabulate

from dpbench.metrics import format_mean_std, mean_std
from dpbench.params import format_params, natural_key
from dpbench.plugins import Registry, get_registry
from dpbench.results import TrialResult, dataset_label
from dpbench.specs import metric_base

Table = tuple[list[str], list[list[str]]]
BEST_MARK = " **★**"
#: After a model whose trials did not all converge (:func:`dpbench.harness.train.converged`).
UNCONVERGED_MARK = " †"
UNCONVERGED_NOTE = ("† at least one seed did not converge: its best validation loss was still improving by "
                    "≥ 1 % over the last 20 % of its steps at the step cap.")
REFERENCE_MODEL = "lstm"


def label(name: str, params: dict[str, Any]) -> str:
    """``name:k=v,...`` (just ``name`` without params)."""
    return name + (f":{format_params(params)}" if params else "")


def ok_trials(trials: Iterable[TrialResult]) -> list[TrialResult]:
    return [t for t in trials if t.status == "ok"]


def unconverged(trials: Iterable[TrialResult]) -> int:
    """How many of ``trials`` record ``converged = 0`` (older runs record nothing: 0)."""
    return sum(1 for t in trials if t.metrics.get("converged") == 0)


def mark_unconverged(text: str, trials: Iterable[TrialResult]) -> str:
    """``text`` with :data:`UNCONVERGED_MARK` when any of ``trials`` did not converge."""
    return text + UNCONVERGED_MARK if unconverged(trials) else text


def group(trials: Iterable[TrialResult], by_device: bool = True) -> dict[tuple[str, str, str], list[TrialResult]]:
    """Ok trials grouped by (dataset label, model label, device)."""
    out: dict[tuple[str, str, str], list[TrialResult]] = defaultdict(list)
    for t in ok_trials(trials):
        out[(dataset_label(t), label(t.model, t.model_params),
             t.device if by_device else "")].append(t)
    return out


def metric_stats(trials: list[TrialResult], metric: str) -> tuple[float, float, int]:
    """Mean, std and count of ``metric`` over ``trials`` (NaN, NaN, 0 when absent)."""
    vals = [float(t.metrics[metric]) for t in trials if t.metrics.get(metric) is not None]
    mean, std = mean_std(vals)
    return mean, std, len(vals)


fmt = format_mean_std


def trial_kind(t: TrialResult, registry: Registry) -> str:
    """``forecast`` / ``recall`` from the single-kind registered metrics a finished trial holds
    (the model's own metrics, table ``"model"``, do not say which task it ran)."""
    if t.status != "ok":
        return "failed"
    specs = [registry.metric(key) for key in t.metrics]
    kinds = {s.tasks[0] for s in specs if s is not None and len(s.tasks) == 1 and s.table != "model"}
    return "forecast" if "forecast" in kinds else "recall" if "recall" in kinds else "other"


def metric_keys(trials: Iterable[TrialResult], registry: Registry, kind: str, table: str) -> list[str]:
    """Result keys (``name`` and ``name@qualifier``) present in ``trials`` whose spec applies
    to ``kind`` and belongs to ``table``, in the registry's column order."""
    order = {s.name: i for i, s in enumerate(registry.metrics_where(table=table, tasks=kind))}
    present = {k for t in trials for k in t.metrics if metric_base(k) in order}
    return sorted(present, key=lambda k: (order[metric_base(k)], k))


def column_title(key: str, registry: Registry) -> str:
    """The spec's title, with the qualifier of ``name@qualifier`` in brackets."""
    spec = registry.metric(key)
    title = spec.title if spec is not None else key
    return f"{title} [{key.split('@', 1)[1]}]" if "@" in key else title


def metric_table(trials: Iterable[TrialResult], kind: str, table: str,
                 registry: Registry | None = None) -> Table | None:
    """:func:`accuracy_table` of the registered metrics of report table ``table`` on the
    trials of task kind ``kind``."""
    registry = registry or get_registry()
    chosen = [t for t in ok_trials(trials) if trial_kind(t, registry) == kind]
    return accuracy_table(chosen, metric_keys(chosen, registry, kind, table), registry)


def accuracy_table(trials: Iterable[TrialResult], metrics: list[str],
                   registry: Registry | None = None) -> Table | None:
    """Mean ± std over seeds per (dataset, model, device) of the result keys ``metrics``
    present; the best mean per (dataset, device) and metric is marked ★ (direction from
    the registry; descriptive metrics are not marked). The ``budget`` columns (steps,
    sequences, wall time: the registered metrics of table ``budget``) follow, never marked;
    a model with an unconverged seed is marked †."""
    registry = registry or get_registry()
    groups = {k: v for k, v in group(trials).items() if any(m in t.metrics for t in v for m in metrics)}
    used = [m for m in metrics if any(m in t.metrics for v in groups.values() for t in v)]
    if not groups or not used:
        return None
    higher = {m: (registry.metric(m).higher_is_better if registry.metric(m) else None) for m in used}
    stats = {k: {m: metric_stats(v, m) for m in used} for k, v in groups.items()}
    best: dict[tuple[str, str, str], float] = {}
    for (ds, _, dev), by_metric in stats.items():
        for m, (mean, _, _) in by_metric.items():
            if math.isfinite(mean) and higher[m] is not None:
                cur = best.get((ds, dev, m))
                better = cur is None or (mean > cur if higher[m] else mean < cur)
                best[(ds, dev, m)] = mean if better else cur
    spent = [spec.name for spec in registry.metrics_where(table="budget")
             if any(spec.name in t.metrics for v in groups.values() for t in v)]
    headers = ["dataset", "model", "device", "seeds"] + [column_title(m, registry) for m in used + spent]
    rows = []
    for key in sorted(stats, key=lambda k: [natural_key(str(p)) for p in k]):
        ds, model, dev = key
        row = [ds, mark_unconverged(model, groups[key]), dev, str(len(groups[key]))]
        for m in used:
            mean, std, _ = stats[key][m]
            cell = fmt(mean, std)
            n_models = sum(1 for k in stats if k[0] == ds and k[2] == dev)
            if n_models > 1 and math.isfinite(mean) and mean == best.get((ds, dev, m)):
                cell += BEST_MARK
            row.append(cell)
        row += [fmt(*metric_stats(groups[key], m)[:2]) for m in spent]
        rows.append(row)
    return headers, rows


def tuning_overhead(trials: Iterable[TrialResult]) -> tuple[float, float] | None:
    """``(tuning wall s, final-trial wall s)`` summed over a run: each study's
    ``tuning_wall_s`` once (every final trial of a study carries the same figure) and every
    final trial's ``wall_time_s``; None when nothing was tuned. The overhead ratio of the
    protocol is ``(tuning + final) / final``."""
    studies: dict[tuple, float] = {}
    final = 0.0
    for t in trials:
        if t.metrics.get("wall_time_s") is not None:
            final += float(t.metrics["wall_time_s"])
        if t.metrics.get("tuning_wall_s") is not None:
            key = (t.block, t.model, format_params(t.model_params), t.dataset, format_params(t.dataset_params), t.device)
            studies[key] = float(t.metrics["tuning_wall_s"])
    return (sum(studies.values()), final) if studies else None


#: Models the relative table divides by: the reservoir computer and the floor.
RELATIVE_TO = ("ngrc", "persistence")
RELATIVE_METRICS = {"vpt_lyapunov": "VPT", "nrmse_1step": "NRMSE"}  # NRMSE: one-step


def relative_table(trials: Iterable[TrialResult]) -> Table | None:
    """Each forecaster's seed-mean VPT and one-step NRMSE divided by those of ``ngrc`` and
    of ``persistence`` on the same (dataset, device) (``-`` where a reference is absent).
    VPT ratio > 1 and NRMSE ratio < 1 mean better than the reference."""
    groups = group(trials)
    means = {k: {m: metric_stats(v, m)[0] for m in RELATIVE_METRICS} for k, v in groups.items()}
    refs = [r for r in RELATIVE_TO if any(k[1] == r for k in means)]
    if not refs:
        return None
    headers = ["dataset", "model", "device"] + [f"{title} / {r}" for m, title in RELATIVE_METRICS.items()
                                               for r in refs]
    rows = []
    for key in sorted(means, key=lambda k: [natural_key(str(p)) for p in k]):
        ds, model, dev = key
        if not any(math.isfinite(v) for v in means[key].values()):
            continue
        row = [ds, model, dev]
        for m in RELATIVE_METRICS:
            for r in refs:
                ref = means.get((ds, r, dev), {}).get(m, math.nan)
                row.append(times(means[key][m] / ref) if ref and math.isfinite(ref) else "-")
        rows.append(row)
    return (headers, rows) if rows else None




def max_lag_table(derived: list[dict[str, Any]], trials: Iterable[TrialResult] = ()) -> Table | None:
    """The ``max_lag_at_*`` rows of ``results.json['derived']``, with a block column when
    two blocks hold the same (dataset, model, device); a model with an unconverged trial on
    that dataset is marked †."""
    behind = {(t.dataset, label(t.model, t.model_params), t.device) for t in ok_trials(trials) if unconverged([t])}

    def model_cell(d: dict[str, Any]) -> str:
        text = d.get("model", "") + (f":{d['model_params']}" if d.get("model_params") else "")
        return text + (UNCONVERGED_MARK if (d.get("dataset", ""), text, d.get("device", "")) in behind else "")

    rows = [[d.get("dataset", ""), d.get("dataset_params", ""), d.get("block", ""), model_cell(d), d.get("device", ""),
             fmt(d.get("value")) if isinstance(d.get("value"), (int, float)) else "-",
             ", ".join(f"{x:g}" for x in d.get("lags", []))]
            for d in derived if str(d.get("metric", "")).startswith("max_lag_at")]
    if not rows:
        return None
    headers = ["dataset", "swept params", "block", "model", "device", "max lag at 90 % accuracy", "lags tried"]
    cells = [(r[0], r[1], r[3], r[4]) for r in rows]
    if len(set(cells)) == len(cells):  # no dataset repeated across blocks: the column is noise
        headers, rows = headers[:2] + headers[3:], [r[:2] + r[3:] for r in rows]
    return headers, sorted(rows)


def model_metric_values(trials: Iterable[TrialResult], registry: Registry | None = None
                        ) -> dict[tuple[str, str, str, str], list[float]]:
    """The seed values of the metrics models compute themselves (registered in table
    ``"model"``, e.g. the hybrid's ``sigma_hat``) per (dataset, model, device, result key)
    of the ok trials; keys ordered by dataset, model, device, then the registry's column order."""
    registry = registry or get_registry()
    order = {s.name: i for i, s in enumerate(registry.metrics_where(table="model"))}
    values: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for t in ok_trials(trials):
        for key, v in t.metrics.items():
            if metric_base(key) in order and v is not None:
                values[(dataset_label(t), label(t.model, t.model_params), t.device, key)].append(float(v))
    return dict(sorted(values.items(), key=lambda kv: ([natural_key(str(p)) for p in kv[0][:3]],
                                                        order[metric_base(kv[0][3])], kv[0][3])))


#: How a model-metric row states the spec's direction.
BETTER = {True: "higher", False: "lower", None: "-"}


def model_metric_table(trials: Iterable[TrialResult], registry: Registry | None = None) -> Table | None:
    """:func:`model_metric_values` as rows: the metric's registered title and direction,
    mean ± std over seeds."""
    registry = registry or get_registry()
    rows = [[ds, model, dev, column_title(key, registry), BETTER[registry.metric(key).higher_is_better],
             fmt(*mean_std(v)), str(len(v))]
            for (ds, model, dev, key), v in model_metric_values(trials, registry).items()]
    return (["dataset", "model", "device", "metric", "better", "mean ± std", "seeds"], rows) if rows else None


def budget_table(trials: Iterable[TrialResult]) -> Table | None:
    """Models built outside the parameter budget (``budget_ok = 0``): their width cannot
    reach it (e.g. a hybrid with only its physical parameters), so they are compared at
    their own size."""
    seen: dict[tuple[str, str, str], float] = {}
    for t in ok_trials(trials):
        if t.metrics.get("budget_ok") == 0:
            seen[(dataset_label(t), label(t.model, t.model_params), t.device)] = t.metrics.get("param_count", math.nan)
    rows = [[*key, fmt(n)] for key, n in sorted(seen.items(), key=lambda kv: [natural_key(str(p)) for p in kv[0]])]
    return (["dataset", "model", "device", "params"], rows) if rows else None


def cost_by_model(trials: Iterable[TrialResult], registry: Registry | None = None
                  ) -> dict[tuple[str, str], dict[str, float]]:
    """Per (model label, device): medians over all its ok trials of the registered cost
    metrics (``table="cost"``: parameters, training and inference throughput, peak memory)."""
    acc: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    names = [s.name for s in (registry or get_registry()).metrics_where(table="cost")]
    for t in ok_trials(trials):
        for m in names:
            v = t.metrics.get(m)
            if v is not None and math.isfinite(v):
                acc[(label(t.model, t.model_params), t.device)][m].append(float(v))
    out = {}
    for key, by_metric in acc.items():
        out[key] = {m: sorted(v)[len(v) // 2] for m, v in by_metric.items()}
    return out


def speedup(cost: dict[tuple[str, str], dict[str, float]], key: tuple[str, str], metric: str) -> float:
    """``metric`` of ``key`` over that of ``lstm`` on the same device (NaN when absent)."""
    ref = cost.get((REFERENCE_MODEL, key[1]), {}).get(metric)
    val = cost.get(key, {}).get(metric)
    return val / ref if ref and val is not None else math.nan


def ranking(trials: Iterable[TrialResult], dataset: str) -> list[str]:
    """Model labels on forecast dataset label ``dataset`` (``T.label`` form, lowest seed's
    figure), best first: by mean VPT (higher), then mean NRMSE of the rollout (lower)."""
    scores: dict[str, tuple[float, float]] = {}
    for key, ts in group(trials, by_device=False).items():
        if label(ts[0].dataset, ts[0].dataset_params) != dataset:
            continue
        vpt, _, _ = metric_stats(ts, "vpt_lyapunov")
        nrmse, _, _ = metric_stats(ts, "nrmse_rollout")
        scores[key[1]] = (-vpt if math.isfinite(vpt) else math.inf, nrmse if math.isfinite(nrmse) else math.inf)
    return sorted(scores, key=lambda m: (*scores[m], m))


def cost_table(trials: Iterable[TrialResult], registry: Registry | None = None) -> Table | None:
    """The registered cost metrics per (model, device); each throughput metric is followed
    by its speedup vs ``lstm``; a model with an unconverged seed is marked †."""
    registry = registry or get_registry()
    trials = list(trials)
    cost = cost_by_model(trials, registry)
    if not cost:
        return None
    behind = {(label(t.model, t.model_params), t.device) for t in ok_trials(trials) if unconverged([t])}
    specs = registry.metrics_where(table="cost")
    headers = ["model", "device"]
    for spec in specs:
        headers += [spec.title] + ([f"{spec.title.split(' ')[0]} speedup vs lstm"] if spec.gate == "throughput" else [])
    rows = []
    for key in sorted(cost, key=lambda k: [natural_key(str(p)) for p in k]):
        row = [key[0] + (UNCONVERGED_MARK if key in behind else ""), key[1]]
        for spec in specs:
            row.append(fmt(cost[key].get(spec.name, math.nan)))
            if spec.gate == "throughput":
                row.append(times(speedup(cost, key, spec.name)))
        rows.append(row)
    return headers, rows


def device_ratio_table(trials: Iterable[TrialResult], base: str = "cpu") -> Table | None:
    """Per model run on ``base`` and on another device: median training and inference
    throughput on each and their ratio (other / base); None unless two devices are present."""
    cost = cost_by_model(trials)
    devices = sorted({dev for _, dev in cost if dev != base})
    rows = []
    for model in sorted({m for m, _ in cost}, key=natural_key):
        ref = cost.get((model, base))
        for dev in devices:
            other = cost.get((model, dev))
            if not ref or not other:
                continue
            row = [model, f"{dev} / {base}"]
            for metric in ("train_seq_per_s", "infer_seq_per_s"):
                a, b = ref.get(metric, math.nan), other.get(metric, math.nan)
                row += [fmt(a), fmt(b), times(b / a if a else math.nan)]
            rows.append(row)
    if not rows:
        return None
    return ["model", "devices", f"train seq/s ({base})", "train seq/s (other)", "train ratio",
            f"infer seq/s ({base})", "infer seq/s (other)", "infer ratio"], rows


def times(x: float) -> str:
    """A speedup factor such as ``1.29×`` (``-`` when unknown)."""
    if not math.isfinite(x):
        return "-"
    return f"{x:.2f}×" if x >= 0.1 else f"{x:.2g}×"


def failure_table(trials: Iterable[TrialResult]) -> Table | None:
    rows = [[label(t.dataset, t.dataset_params), label(t.model, t.model_params), str(t.seed), t.device,
             t.status, (t.error or "")[:120]] for t in trials if t.status != "ok"]
    return (["dataset", "model", "seed", "device", "status", "error"], rows) if rows else None


def render(table: Table, fmt_name: str = "pipe") -> str:
    """The table as text: ``pipe`` (Markdown) or ``simple`` (terminal)."""
    headers, rows = table
    if fmt_name != "pipe":
        rows = [[c.replace(BEST_MARK, " *") for c in row] for row in rows]
    return tabulate(rows, headers=headers, tablefmt=fmt_name, disable_numparse=True)

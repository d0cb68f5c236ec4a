"""Summaries over trials: mean ± std tables and metrics derived across seeds and sweeps."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from dpbench.metrics import format_mean_std, max_lag_at, mean_std
from dpbench.params import format_params, natural_key
from dpbench.results import TrialResult, dataset_label

SWEEP_KEYS = ("lag", "length")
FORECAST_COLUMNS = ("nrmse_1step", "nrmse_rollout", "vpt_lyapunov")
RECALL_COLUMNS = ("accuracy", "cross_entropy", "baseline_cross_entropy", "mse", "baseline_mse")
COST_COLUMNS = ("param_count", "train_seq_per_s", "infer_seq_per_s", "peak_memory_mb")


def derived_metrics(trials: Iterable[TrialResult], level: float = 0.9) -> list[dict[str, Any]]:
    """``max_lag_at_90`` per (model, model params, dataset, other dataset params, device, block):
    the largest swept ``lag`` (or ``length``) whose accuracy, averaged over seeds, is ≥ 90 %."""
    groups: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in trials:
        acc = t.metrics.get("accuracy")
        key = next((k for k in SWEEP_KEYS if k in t.dataset_params), None)
        if t.status != "ok" or acc is None or key is None:
            continue
        rest = {k: v for k, v in t.dataset_params.items() if k != key}
        gid = (t.model, format_params(t.model_params), t.dataset, key, format_params(rest), t.device, t.block)
        groups[gid][float(t.dataset_params[key])].append(acc)
    out = []
    for (model, mparams, dataset, key, rest, device, block), by_lag in sorted(groups.items()):
        means = {lag: sum(v) / len(v) for lag, v in by_lag.items()}
        params = ",".join(p for p in (f"{key}=*", rest) if p)
        out.append({"model": model, "model_params": mparams, "dataset": dataset,
                    "dataset_params": params, "seed": "", "device": device, "status": "ok",
                    "metric": f"max_lag_at_{int(level * 100)}", "value": max_lag_at(means, level),
                    "lags": sorted(means), "block": block})
    return out


def summary_rows(trials: Iterable[TrialResult]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per task kind: headers and rows of mean ± std over seeds per (dataset, model, device)."""
    groups: dict[tuple, list[TrialResult]] = defaultdict(list)
    for t in trials:
        kind = "forecast" if "nrmse_1step" in t.metrics else "recall" if t.status == "ok" else "failed"
        dlabel = dataset_label(t)
        mlabel = t.model + (f":{format_params(t.model_params)}" if t.model_params else "")
        groups[(kind, dlabel, mlabel, t.device)].append(t)
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    for kind, columns in (("forecast", FORECAST_COLUMNS), ("recall", RECALL_COLUMNS)):
        keys = sorted((k for k in groups if k[0] == kind), key=lambda k: [natural_key(str(p)) for p in k])
        used = [c for c in columns if any(c in t.metrics for k in keys for t in groups[k])]
        headers = ["dataset", "model", "device", "seeds", *used, *COST_COLUMNS]
        rows = []
        for key in keys:
            ts = [t for t in groups[key] if t.status == "ok"]
            row = [key[1], key[2], key[3], str(len(ts))]
            for c in (*used, *COST_COLUMNS):
                row.append(format_mean_std(*mean_std(t.metrics.get(c, float("nan")) for t in ts)))
            rows.append(row)
        if rows:
            tables[kind] = (headers, rows)
    return tables


def failures(trials: Iterable[TrialResult]) -> list[TrialResult]:
    return [t for t in trials if t.status != "ok"]

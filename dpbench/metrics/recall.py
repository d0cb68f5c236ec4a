"""Built-in recall metrics: accuracy, cross-entropy, MSE, the memoryless baseline, and
``max_lag_at_90`` derived over a lag sweep.

* ``accuracy``: share of scored positions answered right (class tasks: argmax; regression
  tasks: absolute error ≤ ``tolerance``, the dataset's ``metadata["tolerance"]`` or a tenth
  of the memoryless baseline's RMS error); ``cross_entropy`` in nats over all positions
  (Graves et al. 2014, arXiv:1410.5401, report bits per sequence; we use nats per step).
* ``max_lag_at_90``: the largest swept ``lag`` (or ``length``) whose seed-mean accuracy
  is ≥ 0.9 (seed §6: "how long a dependency can each model carry").
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from dpbench.hookspecs import hookimpl
from dpbench.metrics import max_lag_at
from dpbench.params import format_params
from dpbench.specs import MetricSpec

SWEEP_KEYS = ("lag", "length")
LEVEL = 0.9
CITATION = "Hochreiter & Schmidhuber 1997 (copy/adding tasks); Graves et al. 2014, arXiv:1410.5401"


def max_lag_rows(trials: Iterable[Any]) -> list[dict[str, Any]]:
    """``max_lag_at_90`` per (model, model params, dataset, other dataset params, device, block)."""
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
                    "metric": f"max_lag_at_{int(LEVEL * 100)}", "value": max_lag_at(means, LEVEL),
                    "lags": sorted(means), "block": block})
    return out


RECALL = ("recall",)
SPECS = (
    MetricSpec("accuracy", "accuracy", "share of scored test positions recalled", CITATION,
               higher_is_better=True, compute="dpbench.metrics._recall:recall_values", tasks=RECALL, tolerance=0.02, order=10),
    MetricSpec("cross_entropy", "cross-entropy (nats)", "mean cross-entropy per step (class tasks)", CITATION,
               higher_is_better=False, tasks=RECALL, tolerance=0.01, order=20),
    MetricSpec("baseline_cross_entropy", "baseline cross-entropy (nats)",
               "cross-entropy of the memoryless baseline", CITATION, higher_is_better=None, tasks=RECALL,
               gate="none", table="none", order=21),
    MetricSpec("mse", "MSE", "mean squared error (regression tasks)", CITATION, higher_is_better=False,
               tasks=RECALL, tolerance=1e-3, order=30),
    MetricSpec("baseline_mse", "baseline MSE", "MSE of the memoryless baseline", CITATION,
               higher_is_better=None, tasks=RECALL, gate="none", table="none", order=31),
    MetricSpec("grad_ratio_first_last", "gradient ratio first/last",
               "‖∂y_T/∂x_1‖ / ‖∂y_T/∂x_T‖ ([eval] gradient_sensitivity; seed Fig. 6)", "seed Fig. 6",
               higher_is_better=None, tasks=RECALL, needs=("model",), gate="none", table="none"),
    MetricSpec("max_lag_at_90", "max lag at 90 % accuracy", "largest swept lag with seed-mean accuracy >= 0.9",
               "seed section 6", higher_is_better=True, compute=max_lag_rows, tasks=RECALL, needs=("trials",),
               gate="none", table="none", scope="run"),
)


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in SPECS:
        register(spec)

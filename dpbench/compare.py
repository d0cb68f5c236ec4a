"""The CI regression gate: compare two runs cell by cell.

A *cell* is (model, model params, dataset, dataset params, device, metric) present in
both runs with status ``ok``. Two rules, both direction-aware:

Which metric follows which rule, its direction and its absolute tolerance floor come from
the metric registry (:class:`dpbench.specs.MetricSpec` ``gate``, ``higher_is_better``,
``tolerance``), so a plugin's metric is gated like a built-in one.

* **Throughput** (``gate="throughput"``: ``train_seq_per_s``, ``infer_seq_per_s``; higher is better). The raw
  repeat samples of all seeds are pooled per cell. ``ratio = median(current) /
  median(baseline)``. A regression needs *both* a change larger than the threshold,
  ``ratio < 1 / (1 + threshold)`` (asv's factor rule: 10 % → the baseline is more than
  1.1× faster), *and* significance: a one-sided Mann–Whitney U test (scipy; exact for
  small samples without ties) that current samples are stochastically smaller, with
  ``p ≤ alpha`` (default 0.05; with 3 vs 3 samples, the smoke suite's minimum, the exact
  p reaches 0.05 only when every current sample is below every baseline sample). An
  improvement is the mirror image.
* **Accuracy** (``gate="accuracy"``: ``nrmse_*``, ``mse``, ``cross_entropy``, the long-term
  distances lower is better; ``accuracy``, ``vpt_lyapunov``, ``climate_ok`` higher; a
  qualified key such as ``vpt_lyapunov@eps=0.3`` follows its metric). Means over the seeds both runs have. The cell regresses when
  the change in the bad direction exceeds ``max(rel_tol · |baseline|, abs_floor[metric],
  baseline seed std)``: a change inside the seed-to-seed spread is not evidence.

With ``normalize=True`` every throughput sample is divided by its run's calibration
median (``results.json["calibration"]``, see :mod:`dpbench.calibration`), or by the
trial's own calibration where the trial's ``info`` holds one. With
``relative_to="lstm"`` it is divided instead by the median throughput of that model on
the same dataset, params and device *in the same run* (a speedup; cells without the
reference model are dropped, and the reference model's own cells are not gated).
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpbench.params import UsageError, format_params
from dpbench.results import trials_of

if TYPE_CHECKING:
    from dpbench.plugins import Registry


def _registry(registry: "Registry | None") -> "Registry":
    """``registry`` or the process-wide one (imported here: ``--help`` stays light)."""
    if registry is not None:
        return registry
    from dpbench.plugins import get_registry

    return get_registry()


def throughput_metrics(registry: Registry | None = None) -> tuple[str, ...]:
    """Metrics gated by the throughput rule."""
    return tuple(s.name for s in _registry(registry).metrics_where(gate="throughput"))


def gated_accuracy(registry: Registry, key: str) -> tuple[bool, float] | None:
    """``(higher is better, tolerance floor)`` of a result key under the accuracy rule, else None."""
    spec = registry.metric(key)
    if spec is None or spec.gate != "accuracy" or spec.higher_is_better is None:
        return None
    return spec.higher_is_better, float(spec.tolerance)


DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.05
DEFAULT_ACC_TOLERANCE = 0.10

Key = tuple[str, str, str, str, str, str, str]  # model, model params, dataset, dataset params, device, metric, block


@dataclass
class Row:
    """One compared cell."""

    model: str
    dataset: str
    device: str
    metric: str
    baseline: float
    current: float
    ratio: float
    p_value: float | None
    n: tuple[int, int]
    status: str  # "ok", "regression", "improved", "untested"
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.status == "regression"


def calibration_median(doc: dict[str, Any], name: str) -> float:
    """The run's calibration median (for ``--normalize``); UsageError when absent."""
    cal = doc.get("calibration")
    med = cal.get("median") if isinstance(cal, dict) else None
    if not isinstance(med, (int, float)) or isinstance(med, bool) or not med > 0:
        raise UsageError(f"--normalize: {name} has no calibration (results.json 'calibration.median')")
    return float(med)


def _trial_scale(info: dict[str, Any], run_scale: float | None) -> float:
    """Divisor of a trial's throughput: 1 without normalisation; else the trial's own
    calibration (``info["calibration"]["median"]``, measured right before it) when
    present, or the run's."""
    if run_scale is None:
        return 1.0
    cal = info.get("calibration")
    med = cal.get("median") if isinstance(cal, dict) else None
    return float(med) if isinstance(med, (int, float)) and not isinstance(med, bool) and med > 0 else run_scale


def _cells(doc: dict[str, Any], scale: float | None, relative_to: str | None = None,
           registry: Registry | None = None) -> dict[Key, dict[str, Any]]:
    """Per cell: pooled throughput samples (divided by calibration ``scale``, or by the median of
    ``relative_to`` on the same dataset and device) and per-seed accuracy values."""
    registry = _registry(registry)
    throughput = throughput_metrics(registry)
    cells: dict[Key, dict[str, Any]] = defaultdict(lambda: {"samples": [], "seeds": {}})
    for t in trials_of(doc):
        if t.status != "ok":
            continue
        base = (t.model, format_params(t.model_params), t.dataset, format_params(t.dataset_params), t.device)
        for m in throughput:
            vals = [v / _trial_scale(t.info, scale) for v in t.samples.get(m, [])
                    if v is not None and math.isfinite(v) and v > 0]
            if vals:
                cells[(*base, m, t.block)]["samples"] += vals
        for m, v in t.metrics.items():
            if gated_accuracy(registry, m) is not None and v is not None and math.isfinite(v):
                cells[(*base, m, t.block)]["seeds"][t.seed] = float(v)
    if relative_to is not None:
        refs = {k[2:]: statistics.median(v["samples"]) for k, v in cells.items()
                if k[0] == relative_to and not k[1] and k[5] in throughput}
        for key in [k for k in cells if k[5] in throughput]:
            if key[0] == relative_to or key[2:] not in refs:
                del cells[key]
            else:
                cells[key]["samples"] = [v / refs[key[2:]] for v in cells[key]["samples"]]
    return cells


def _labels(key: Key) -> tuple[str, str, str, str]:
    """(model label, dataset label, device, metric) of a cell key."""
    dataset = key[2] + (f":{key[3]}" if key[3] else "") + (f" [{key[6]}]" if len(key) > 6 and key[6] else "")
    return (key[0] + (f":{key[1]}" if key[1] else ""), dataset, key[4], key[5])


def _throughput_row(key: Key, b: list[float], c: list[float], threshold: float, alpha: float) -> Row:
    from scipy.stats import mannwhitneyu  # here, not at import: the CLI's parser needs this module

    mb, mc = statistics.median(b), statistics.median(c)
    ratio = mc / mb
    status, p, note = "ok", None, ""
    if ratio < 1 / (1 + threshold) or ratio > 1 + threshold:
        worse = ratio < 1
        if min(len(b), len(c)) < 2:
            status, note = "untested", "too few samples for a test"
        else:
            p = float(mannwhitneyu(c, b, alternative="less" if worse else "greater").pvalue)
            if p <= alpha:
                status = "regression" if worse else "improved"
            else:
                note = f"not significant (p={p:.3g} > {alpha:g})"
    return Row(*_labels(key), mb, mc, ratio, p, (len(b), len(c)), status, note)


def _accuracy_row(key: Key, b: dict[int, float], c: dict[int, float], rel_tol: float,
                  rule: tuple[bool, float]) -> Row | None:
    seeds = sorted(set(b) & set(c))
    if not seeds:
        return None
    higher, floor = rule
    vb, vc = [b[s] for s in seeds], [c[s] for s in seeds]
    mb, mc = statistics.fmean(vb), statistics.fmean(vc)
    spread = statistics.stdev(vb) if len(vb) > 1 else 0.0
    tol = max(rel_tol * abs(mb), floor, spread)
    worse_by = (mb - mc) if higher else (mc - mb)
    status = "regression" if worse_by > tol else "improved" if -worse_by > tol else "ok"
    ratio = mc / mb if mb else (1.0 if mc == mb else math.inf)
    return Row(*_labels(key), mb, mc, ratio, None, (len(seeds), len(seeds)), status, f"tolerance {tol:.3g}")


def compare_docs(baseline: dict[str, Any], current: dict[str, Any], threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, acc_tolerance: float = DEFAULT_ACC_TOLERANCE,
                 normalize: bool = False, names: tuple[str, str] = ("baseline", "current"),
                 relative_to: str | None = None, registry: Registry | None = None) -> list[Row]:
    """All comparable cells of two validated ``results.json`` documents (metrics, their
    rules and directions from ``registry``, default the process registry).

    Raises :class:`UsageError` when nothing is comparable (or calibration is missing
    with ``normalize``)."""
    sb = calibration_median(baseline, names[0]) if normalize else None
    sc = calibration_median(current, names[1]) if normalize else None
    if normalize and relative_to:
        raise UsageError("use either --normalize or --relative-to, not both")
    if relative_to and not any(t.get("model") == relative_to for d in (baseline, current) for t in d["trials"]):
        raise UsageError(f"--relative-to {relative_to}: no such model in {names[0]} or {names[1]}")
    registry = _registry(registry)
    throughput = throughput_metrics(registry)
    cb, cc = _cells(baseline, sb, relative_to, registry), _cells(current, sc, relative_to, registry)
    rows: list[Row] = []
    for key in sorted(set(cb) & set(cc)):
        if key[5] in throughput:
            if cb[key]["samples"] and cc[key]["samples"]:
                rows.append(_throughput_row(key, cb[key]["samples"], cc[key]["samples"], threshold, alpha))
        else:
            rule = gated_accuracy(registry, key[5])
            row = _accuracy_row(key, cb[key]["seeds"], cc[key]["seeds"], acc_tolerance, rule) if rule else None
            if row is not None:
                rows.append(row)
    if not rows:
        raise UsageError(f"nothing comparable: {names[0]} and {names[1]} share no (model, dataset, device, "
                         "metric) with finished trials")
    return rows

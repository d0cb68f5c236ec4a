"""Verdict stability between two runs (e.g. ``--budget-scale 1`` and ``5``).

Per dataset (label and block, :func:`dpbench.results.dataset_label`) and device, each run's
models are ordered by their mean over seeds of the dataset's headline metric; the two
orderings are compared with Spearman's rank correlation ρ (``scipy.stats.spearmanr``;
Spearman 1904), and every pair of models whose order differs between the runs is a
*flipped verdict*. A verdict is only a flip when both runs separate the pair (a tie in
either run is no verdict).
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from scipy.stats import spearmanr

from dpbench.params import UsageError
from dpbench.plugins import get_registry
from dpbench.report.tables import label
from dpbench.results import TrialResult, dataset_label

#: headline metric per dataset, first present wins; directions come from the metric registry
HEADLINE = ("vpt_lyapunov", "nrmse_1step", "accuracy", "mse")


def higher_is_better(metric: str) -> bool:
    """The registered direction of ``metric`` (an unregistered or descriptive one: lower)."""
    spec = get_registry().metric(metric)
    return bool(spec is not None and spec.higher_is_better)


@dataclass
class Stability:
    """One dataset's comparison: ``means_a``/``means_b`` by model, ρ (NaN with < 3 models
    or a constant ordering), and the flipped pairs ``(winner in A, winner in B)``."""

    dataset: str
    device: str
    metric: str
    means_a: dict[str, float]
    means_b: dict[str, float]
    rho: float
    flips: list[tuple[str, str]] = field(default_factory=list)


def model_means(trials: Iterable[TrialResult], metric: str | None = None
                ) -> dict[tuple[str, str], tuple[str, bool, dict[str, float]]]:
    """``{(dataset label, device): (metric, higher_is_better, {model label: mean over seeds})}``
    over ok trials, for ``metric`` or the headline metric present for every model."""
    groups: dict[tuple[str, str], dict[str, list[TrialResult]]] = defaultdict(lambda: defaultdict(list))
    for t in trials:
        if t.status == "ok":
            groups[(dataset_label(t), t.device)][label(t.model, t.model_params)].append(t)
    out = {}
    for key, by_model in groups.items():
        candidates = [metric] if metric else list(HEADLINE)
        for m in candidates:
            means = {}
            for model, ts in by_model.items():
                vals = [float(t.metrics[m]) for t in ts if t.metrics.get(m) is not None and math.isfinite(t.metrics[m])]
                if vals:
                    means[model] = sum(vals) / len(vals)
            if means and len(means) == len(by_model):
                out[key] = (m, higher_is_better(m), means)
                break
    return out


def compare_runs(a: Iterable[TrialResult], b: Iterable[TrialResult], metric: str | None = None) -> list[Stability]:
    """Per dataset both runs have (with at least two common models), ρ and the flips."""
    a, b = list(a), list(b)
    ma, mb = model_means(a, metric), model_means(b, metric)
    if metric and not (ma and mb):
        present = sorted({k for t in a + b for k in t.metrics})
        raise UsageError(f"--metric {metric!r}: not measured for every model of any dataset in both runs; "
                         f"metrics present: {', '.join(present[:30])}")
    out = []
    for key in sorted(set(ma) & set(mb)):
        (name, higher, means_a), (name_b, _, means_b) = ma[key], mb[key]
        if name != name_b:
            continue
        common = sorted(set(means_a) & set(means_b))
        if len(common) < 2:
            continue
        xa, xb = [means_a[m] for m in common], [means_b[m] for m in common]
        rho = float(spearmanr(xa, xb).statistic) if len(common) >= 3 else math.nan
        if len(common) == 2:  # ρ is ±1 by definition; report it when the pair is separated
            da, db = xa[0] - xa[1], xb[0] - xb[1]
            rho = math.nan if da == 0 or db == 0 else (1.0 if (da > 0) == (db > 0) else -1.0)
        flips = []
        for p, q in itertools.combinations(common, 2):
            da, db = means_a[p] - means_a[q], means_b[p] - means_b[q]
            if da != 0 and db != 0 and (da > 0) != (db > 0):
                better_a = p if (da > 0) == higher else q
                better_b = q if better_a == p else p
                flips.append((better_a, better_b))
        out.append(Stability(key[0], key[1], name, {m: means_a[m] for m in common},
                             {m: means_b[m] for m in common}, rho, flips))
    if not out:
        raise UsageError("the two runs share no dataset with at least two models in common "
                         "(compare runs of the same suite, e.g. --budget-scale 1 and 5)")
    return out


def stability_table(rows: list[Stability]) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)`` for :func:`dpbench.report.tables.render`."""
    body = []
    for s in rows:
        flips = "; ".join(f"{a} > {b} became {b} > {a}" for a, b in s.flips) or "none"
        rho = "-" if not math.isfinite(s.rho) else f"{s.rho:.2f}"
        body.append([s.dataset, s.device, s.metric, str(len(s.means_a)), rho, str(len(s.flips)), flips])
    return ["dataset", "device", "metric", "models", "Spearman ρ", "flipped pairs", "flips"], body


def fraction_stable(rows: list[Stability], threshold: float = 0.8) -> float:
    """Share of datasets with ρ ≥ ``threshold`` (datasets with undefined ρ count as unstable)."""
    return sum(1 for s in rows if math.isfinite(s.rho) and s.rho >= threshold - 1e-9) / len(rows)

"""Verdicts: which differences between models are larger than the seed-to-seed spread.

Per comparison block and dataset (the headline metric of the dataset, the first of
:data:`PRIMARY` its trials report):

* **ranking** — each model's median over seeds with a bootstrap 95 % confidence interval
  (percentile bootstrap, Efron & Tibshirani 1993; ``scipy.stats.bootstrap``);
* **pairwise tests** — every model against ``lstm`` and, when the block has one, against the
  best model of family ``classical`` (each unordered pair once): two one-sided tests over the
  per-seed values (better / worse), all of them Holm-corrected together across the block
  (Holm 1979, :func:`dpbench.compare.holm`). The test is :data:`TEST`:

  - ``welch`` (default): Welch's unequal-variance t-test (Welch 1947,
    ``scipy.stats.ttest_ind(equal_var=False)``), the test Colas, Sigaud & Oudeyer (2018, *How
    many random seeds? Statistical power analysis in deep RL experiments*, arXiv:1806.08295)
    recommend for comparing a few seeds. Error metrics (lower is better, all values > 0:
    NRMSE, MSE) are compared on a log scale, where seed spreads are roughly symmetric and a
    model ten times better is as far away as one ten times worse. Two sides with no spread
    at all are different exactly when their values differ.
  - ``mwu``: one-sided Mann–Whitney U tests (Mann & Whitney 1947,
    ``scipy.stats.mannwhitneyu``): no normality assumption, but with 3 seeds per side its
    smallest p-value is 1/20, so after Holm no verdict of a block can be significant; use it
    with ≥ 5 seeds.

  Effect size: Cliff's delta δ = P(X > Y) − P(X < Y) = 2U / (n₁n₂) − 1, signed so that δ > 0
  means the model is better (Cliff 1993). A pair with fewer than :data:`MIN_SEEDS` seeds on a
  side is "too few seeds" and is not tested, so it can never be a win.

Across the datasets of a block (or, in a block with one dataset, across its seeds): a
Friedman test (``scipy.stats.friedmanchisquare``) over the models present everywhere and a
critical-difference diagram of their mean ranks with Nemenyi cliques (Demšar 2006, JMLR 7:1;
``scikit_posthocs.critical_difference_diagram``, the optional ``stats`` extra; without it the
report says so in one line).

:func:`verdicts_markdown` turns all of this into the sentences that open ``report.md``.
"""
from __future__ import annotations

import inspect
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy.stats import bootstrap, friedmanchisquare, mannwhitneyu, ttest_ind

from dpbench.compare import holm
from dpbench.plugins import get_registry
from dpbench.params import format_params
from dpbench.results import TrialResult

#: headline metric of a dataset: the first of these its ok trials report
PRIMARY = ("accuracy", "vpt_lyapunov", "nrmse_1step", "nrmse_rollout", "mse")
LABELS = {"accuracy": "accuracy", "vpt_lyapunov": "VPT", "nrmse_1step": "NRMSE 1-step",
          "nrmse_rollout": "NRMSE rollout", "mse": "MSE"}
REFERENCE = "lstm"
CLASSICAL_FAMILY = "classical"
MIN_SEEDS = 3
ALPHA = 0.05
#: the pairwise test: ``welch`` or ``mwu`` (module docstring)
TEST = "welch"
TEST_NAMES = {"welch": "Welch's t-tests", "mwu": "Mann–Whitney U tests"}
STATS_HINT = "pip install 'dpbench[stats]'"


def higher_is_better(metric: str) -> bool:
    """Direction of an accuracy metric, from the metric registry (as the regression gate reads it)."""
    spec = get_registry().metric(metric)
    return bool(spec is not None and spec.higher_is_better)


def median_ci(values: list[float], level: float = 0.95, resamples: int = 2000) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``values`` (NaN, NaN for one value)."""
    if len(values) < 2:
        return math.nan, math.nan
    if min(values) == max(values):
        return values[0], values[0]
    gen = np.random.default_rng(0)
    seed_kw = {"rng": gen} if "rng" in inspect.signature(bootstrap).parameters else {"random_state": gen}
    res = bootstrap((np.asarray(values, dtype=float),), np.median, confidence_level=level,
                    n_resamples=resamples, method="percentile", vectorized=True, axis=-1, **seed_kw)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class Ranked:
    """One model on one dataset: median over seeds and its bootstrap 95 % interval."""

    model: str
    values: list[float]
    median: float
    low: float
    high: float


@dataclass
class Pair:
    """``model`` against ``reference`` on one dataset: one-sided tests both ways."""

    model: str
    reference: str
    n: tuple[int, int]
    medians: tuple[float, float]
    p_better: float = math.nan
    p_worse: float = math.nan
    effect: float = math.nan
    adj_better: float = math.nan
    adj_worse: float = math.nan

    @property
    def tested(self) -> bool:
        return min(self.n) >= MIN_SEEDS

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, ``no significant difference`` or ``too few seeds``."""
        if not self.tested:
            return "too few seeds"
        if self.adj_better <= ALPHA:
            return "better"
        if self.adj_worse <= ALPHA:
            return "worse"
        return "no significant difference"


@dataclass
class DatasetVerdict:
    block: str
    dataset: str
    metric: str
    ranking: list[Ranked]
    pairs: list[Pair] = field(default_factory=list)


@dataclass
class Friedman:
    """The Friedman test of one block; ``figure`` is the CD diagram (None: see ``note``)."""

    block: str
    units: str                 # "datasets" or "seeds"
    n_units: int
    mean_ranks: dict[str, float]
    statistic: float
    p: float
    figure: Path | None = None
    note: str = ""


def _label(name: str, params: dict) -> str:
    return name + (f":{format_params(params)}" if params else "")


def _per_seed(trials: Iterable[TrialResult]) -> dict[str, dict[str, dict[str, dict[int, float]]]]:
    """{block: {dataset label: {model label: {seed: trial}}}} of ok trials (device in the
    dataset label when not cpu)."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for t in trials:
        if t.status == "ok":
            ds = _label(t.dataset, t.dataset_params) + ("" if t.device == "cpu" else f" ({t.device})")
            out[t.block][ds][_label(t.model, t.model_params)][t.seed] = t
    return out


def _primary(by_model: dict[str, dict[int, TrialResult]]) -> str | None:
    present = {m for seeds in by_model.values() for t in seeds.values() for m, v in t.metrics.items()
               if v is not None and math.isfinite(v)}
    return next((m for m in PRIMARY if m in present), None)


def _values(seeds: dict[int, TrialResult], metric: str) -> dict[int, float]:
    return {s: float(t.metrics[metric]) for s, t in seeds.items()
            if t.metrics.get(metric) is not None and math.isfinite(t.metrics[metric])}


def _one_sided(x: list[float], y: list[float], log: bool, test: str) -> tuple[float, float]:
    """p-values of "x > y" and "x < y" by ``test`` (``log``: compare log10 values)."""
    if test == "mwu":
        return (float(mannwhitneyu(x, y, alternative="greater").pvalue),
                float(mannwhitneyu(x, y, alternative="less").pvalue))
    a, b = (np.log10(x), np.log10(y)) if log else (np.asarray(x, float), np.asarray(y, float))
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread on either side: t is 0/0 or ±inf
        diff = float(a[0] - b[0])
        return (0.0 if diff > 0 else 1.0), (0.0 if diff < 0 else 1.0)
    return (float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue),
            float(ttest_ind(a, b, equal_var=False, alternative="less").pvalue))


def _pair(model: str, ref: str, x: list[float], y: list[float], higher: bool, test: str = TEST) -> Pair:
    pair = Pair(model, ref, (len(x), len(y)), (statistics.median(x), statistics.median(y)))
    if pair.tested:
        log = not higher and min(x + y) > 0
        up, down = _one_sided(x, y, log, test)
        u = float(mannwhitneyu(x, y).statistic)
        delta = 2 * u / (len(x) * len(y)) - 1
        pair.p_better, pair.p_worse = (up, down) if higher else (down, up)
        pair.effect = delta if higher else -delta
    return pair


def dataset_verdicts(trials: Iterable[TrialResult], classical: set[str] = frozenset(),
                     test: str = TEST) -> list[DatasetVerdict]:
    """Rankings and Holm-corrected pairwise tests per block and dataset. ``classical``: model
    names of family ``classical`` (the best of them on a dataset is a second reference);
    ``test``: ``welch`` or ``mwu``."""
    if test not in TEST_NAMES:
        raise ValueError(f"test={test!r}; valid: {', '.join(TEST_NAMES)}")
    out: list[DatasetVerdict] = []
    for block, datasets in sorted(_per_seed(trials).items()):
        block_verdicts = []
        for ds, by_model in sorted(datasets.items()):
            metric = _primary(by_model)
            if metric is None:
                continue
            higher = higher_is_better(metric)
            values = {m: _values(seeds, metric) for m, seeds in by_model.items()}
            values = {m: v for m, v in values.items() if v}
            ranking = []
            for m, v in values.items():
                vals = [v[s] for s in sorted(v)]
                ranking.append(Ranked(m, vals, statistics.median(vals), *median_ci(vals)))
            ranking.sort(key=lambda r: -r.median if higher else r.median)
            refs = [REFERENCE] if REFERENCE in values else []
            best_classical = next((r.model for r in ranking if r.model.split(":")[0] in classical), None)
            if best_classical:
                refs.append(best_classical)
            pairs, seen = [], set()
            for ref in refs:
                for m in sorted(values):
                    if m != ref and frozenset((m, ref)) not in seen:
                        seen.add(frozenset((m, ref)))
                        pairs.append(_pair(m, ref, list(values[m].values()), list(values[ref].values()),
                                           higher, test))
            block_verdicts.append(DatasetVerdict(block, ds, metric, ranking, pairs))
        tested = [p for v in block_verdicts for p in v.pairs if p.tested]
        adjusted = holm([p for pair in tested for p in (pair.p_better, pair.p_worse)])
        for i, pair in enumerate(tested):
            pair.adj_better, pair.adj_worse = adjusted[2 * i], adjusted[2 * i + 1]
        out += block_verdicts
    return out


def friedman_block(block: str, verdicts: list[DatasetVerdict], fig_dir: Path | None) -> Friedman | str:
    """The Friedman test over the datasets of ``block`` (values: seed medians, signed so that
    higher is better), or over its seeds when it has one dataset; the CD diagram into
    ``fig_dir/cd-<block>.png``. Returns a one-line reason instead when there is nothing to test."""
    mine = [v for v in verdicts if v.block == block]
    if len(mine) >= 2:
        units = "datasets"
        tables = [{r.model: (r.median if higher_is_better(v.metric) else -r.median) for r in v.ranking} for v in mine]
    elif mine:
        units = "seeds"
        sign = 1 if higher_is_better(mine[0].metric) else -1
        by_seed: dict[int, dict[str, float]] = defaultdict(dict)
        trial_values = {r.model: r.values for r in mine[0].ranking}
        for m, vals in trial_values.items():
            for i, x in enumerate(vals):
                by_seed[i][m] = sign * x
        tables = list(by_seed.values())
    else:
        return "no accuracy metric"
    models = sorted(set.intersection(*(set(t) for t in tables)))
    if len(models) < 3 or len(tables) < 2:
        return f"Friedman test needs ≥ 3 models on ≥ 2 {units} (have {len(models)} on {len(tables)})"
    import pandas as pd

    frame = pd.DataFrame([[t[m] for m in models] for t in tables], columns=models)
    stat, p = friedmanchisquare(*[frame[m].to_numpy() for m in models])
    ranks = frame.rank(axis=1, ascending=False).mean().sort_values()
    result = Friedman(block, units, len(tables), {m: float(r) for m, r in ranks.items()}, float(stat), float(p))
    try:
        import scikit_posthocs as sp
    except ImportError:
        result.note = f"critical-difference diagram needs scikit-posthocs ({STATS_HINT})"
        return result
    if fig_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sig = sp.posthoc_nemenyi_friedman(frame)
        fig, ax = plt.subplots(figsize=(7, 0.6 + 0.28 * len(models)))
        sp.critical_difference_diagram(ranks, sig, ax=ax)
        ax.set_title(f"{block or 'all'}: mean rank over {len(tables)} {units} (Friedman p = {p:.2g})", fontsize=9)
        path = Path(fig_dir) / f"cd-{block or 'all'}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        result.figure = path
    return result


def _num(x: float) -> str:
    return f"{x:.3g}"


def _seeds(n: tuple[int, int]) -> str:
    return f"{n[0]} seeds" if n[0] == n[1] else f"{n[0]} vs {n[1]} seeds"


def pair_sentence(pair: Pair, dataset: str, metric: str) -> str:
    """One verdict in words, e.g. ``bahdanau recalls copy:lag=20 better than lstm
    (accuracy 0.3 vs 0.12, p = 0.004, δ = +1.00, 5 seeds)``."""
    what = f"{LABELS.get(metric, metric)} {_num(pair.medians[0])} vs {_num(pair.medians[1])}"
    verb = "recalls" if metric == "accuracy" else "forecasts" if metric != "mse" else "fits"
    verdict = pair.verdict
    if verdict == "too few seeds":
        return (f"{pair.model} vs {pair.reference} on {dataset}: too few seeds ({pair.n[0]} vs {pair.n[1]}; "
                f"need {MIN_SEEDS} per side) — no verdict ({what})")
    if verdict == "no significant difference":
        p = min(pair.adj_better, pair.adj_worse)
        return (f"no significant difference between {pair.model} and {pair.reference} on {dataset} "
                f"({what}, p = {p:.2g}, δ = {pair.effect:+.2f}, {_seeds(pair.n)})")
    p = pair.adj_better if verdict == "better" else pair.adj_worse
    return (f"{pair.model} {verb} {dataset} {verdict} than {pair.reference} "
            f"({what}, p = {p:.2g}, δ = {pair.effect:+.2f}, {_seeds(pair.n)})")


def block_sentences(verdicts: list[DatasetVerdict]) -> list[str]:
    """Wins and losses first, then no-difference verdicts; a block whose pairs all lack
    seeds gets one line instead of one per pair."""
    pairs = [(v, p) for v in verdicts for p in v.pairs]
    if not pairs:
        return []
    if all(not p.tested for _, p in pairs):
        counts = sorted({n for _, p in pairs for n in p.n})
        return [f"too few seeds for any verdict: {len(pairs)} pairs with {'/'.join(map(str, counts))} seeds per "
                f"model (need {MIN_SEEDS} per side); run with `--seeds {MIN_SEEDS}` or more"]
    order = {"better": 0, "worse": 1, "no significant difference": 2, "too few seeds": 3}
    pairs.sort(key=lambda vp: (order[vp[1].verdict], vp[0].dataset, vp[1].model))
    return [pair_sentence(p, v.dataset, v.metric) for v, p in pairs]


def ranking_rows(v: DatasetVerdict) -> list[list[str]]:
    def ci(r: Ranked) -> str:
        return "–" if math.isnan(r.low) else f"[{_num(r.low)}, {_num(r.high)}]"
    return [[v.dataset, LABELS.get(v.metric, v.metric), str(i + 1), r.model, _num(r.median), ci(r),
             str(len(r.values))] for i, r in enumerate(v.ranking)]


RANKING_HEADERS = ["dataset", "metric", "rank", "model", "median", "95 % CI (bootstrap)", "seeds"]


def classical_models() -> set[str]:
    """Names of the registered models of family ``classical`` (empty when there are none
    or the registry cannot be loaded: the classical reference is then skipped)."""
    try:
        from dpbench.plugins import get_registry

        return {name for name, spec in get_registry().models.items() if spec.family == CLASSICAL_FAMILY}
    except Exception:  # a broken plugin must not break the report
        return set()


def verdicts_markdown(trials: list[TrialResult], fig_dir: Path | None, base: Path,
                      classical: set[str] = frozenset()) -> tuple[str, list[Path]]:
    """The "Verdicts" section (Markdown, image links relative to ``base``) and its figures."""
    from tabulate import tabulate
    import os

    verdicts = dataset_verdicts(trials, classical)
    if not verdicts:
        return "", []
    lines = ["## Verdicts", "",
             f"Per block and dataset, each model against `{REFERENCE}`"
             + (" and the best classical baseline" if classical else "")
             + f" on the dataset's headline metric (each pair once): two one-sided {TEST_NAMES[TEST]} over seeds"
             + (" (error metrics on a log scale)" if TEST == "welch" else "")
             + f", Holm-adjusted across the block (α = {ALPHA:g}); δ is Cliff's delta (> 0: the model is better). "
             f"Fewer than {MIN_SEEDS} seeds on a side: no verdict. Rankings give the median over seeds "
             "with a bootstrap 95 % interval.", ""]
    figures: list[Path] = []
    for block in sorted({v.block for v in verdicts}):
        mine = [v for v in verdicts if v.block == block]
        lines += [f"### {block or 'all trials'}", ""]
        lines += [f"- {s}" for s in block_sentences(mine)] or ["- (no reference model in this block)"]
        lines.append("")
        fr = friedman_block(block, verdicts, fig_dir)
        if isinstance(fr, str):
            lines += [f"Across {'datasets' if len(mine) > 1 else 'seeds'}: {fr}.", ""]
        else:
            order = ", ".join(f"{m} {r:.2f}" for m, r in fr.mean_ranks.items())
            lines += [f"Friedman test over {fr.n_units} {fr.units} and {len(fr.mean_ranks)} models: "
                      f"χ² = {fr.statistic:.3g}, p = {fr.p:.2g}; mean ranks (1 = best): {order}."
                      + (f" {fr.note}." if fr.note else ""), ""]
            if fr.figure is not None:
                rel = Path(os.path.relpath(fr.figure, base)).as_posix()
                lines += [f"![critical-difference diagram, {block}]({rel})", ""]
                figures.append(fr.figure)
        rows = [row for v in mine for row in ranking_rows(v)]
        lines += [tabulate(rows, headers=RANKING_HEADERS, tablefmt="pipe", disable_numparse=True), ""]
    return "\n".join(lines), figures

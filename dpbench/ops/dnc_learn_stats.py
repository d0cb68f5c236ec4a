"""Statistics of paired runs over seeds, for :func:`dpbench.ops.dnc_learn.over_seeds`: MLPerf's
olympic mean, percentile-bootstrap intervals of a ratio of means (seeds resampled as units, or
the two sides independently), Spearman's rank correlation of the pairs, a one-sided Wilcoxon
signed-rank test of per-seed ratios against a goal, and Kaplan–Meier medians of times to a
target with the missed runs right-censored. Plain lists of floats in, floats out; scipy does
the statistics."""
from __future__ import annotations

from typing import Optional

import numpy as np


def olympic_mean(values: list[float]) -> Optional[float]:
    """MLPerf Training's score of repeated runs: the mean after dropping the fastest and the
    slowest run (MLCommons training_policies, "Benchmark results"); the plain mean of fewer
    than 3, None for none."""
    v = sorted(values)
    if len(v) >= 3:
        v = v[1:-1]
    return sum(v) / len(v) if v else None


def _bootstrap_ci(samples: tuple, statistic, level: float, resamples: int, seed: int,
                  paired: bool = False) -> Optional[tuple[float, float]]:
    """Percentile-bootstrap ``level`` interval (Efron & Tibshirani 1993, ch. 13;
    ``scipy.stats.bootstrap``) of ``statistic`` over ``samples``, resampled independently or,
    ``paired``, as tuples (one index draws the i-th value of every sample); None when any
    sample has fewer than 2 values."""
    from scipy.stats import bootstrap

    arrays = tuple(np.asarray(x, dtype=np.float64) for x in samples)
    if any(len(x) < 2 for x in arrays):
        return None
    res = bootstrap(arrays, statistic, paired=paired, vectorized=True, n_resamples=resamples,
                    confidence_level=level, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ratio_of_means(x, y, axis):
    return np.mean(x, axis=axis) / np.mean(y, axis=axis)


def mean_ratio_ci(numer: list[float], denom: list[float], level: float = 0.95,
                  resamples: int = 9999, seed: int = 0) -> Optional[tuple[float, float]]:
    """Bootstrap ``level`` interval of ``mean(numer) / mean(denom)``, the two samples resampled
    independently: right when the values are independent draws, too wide when they come in
    correlated pairs (see :func:`paired_ratio_ci`). None with fewer than 2 values on either
    side."""
    return _bootstrap_ci((numer, denom), _ratio_of_means, level, resamples, seed)


def paired_ratio_ci(numer: list[float], denom: list[float], level: float = 0.95,
                    resamples: int = 9999, seed: int = 0) -> Optional[tuple[float, float]]:
    """Bootstrap ``level`` interval of ``mean(numer) / mean(denom)`` where ``numer[i]`` and
    ``denom[i]`` are one experimental unit's pair (one seed: the same initial weights, the same
    batches, the same validation sets for both implementations), so the units are resampled,
    not the values (Efron & Tibshirani 1993, §6.9 and ch. 13). Valid whether or not the pair's
    values are correlated; narrower than :func:`mean_ratio_ci` when they are. None with fewer
    than 2 pairs."""
    if len(numer) != len(denom):
        raise ValueError(f"paired samples differ in length: {len(numer)} vs {len(denom)}")
    return _bootstrap_ci((numer, denom), _ratio_of_means, level, resamples, seed, paired=True)


def mean_ci(values: list[float], level: float = 0.95, resamples: int = 9999,
            seed: int = 0) -> Optional[tuple[float, float]]:
    """Bootstrap ``level`` interval of the mean of ``values`` (one value per seed, e.g. its
    per-step speed ratio, measured in one run of both implementations side by side). None
    with fewer than 2 values."""
    return _bootstrap_ci((values,), lambda x, axis: np.mean(x, axis=axis), level, resamples,
                         seed)


def rank_correlation(a: list[float], b: list[float]) -> Optional[dict]:
    """Spearman's rank correlation of paired values across units (Spearman 1904;
    ``scipy.stats.spearmanr``) with its two-sided p-value: whether a seed that is hard for
    one implementation is hard for the other, i.e. whether pairing by seed matters. None with
    fewer than 3 pairs or a constant side."""
    from scipy.stats import spearmanr

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    res = spearmanr(a, b)
    return {"rho": float(res.statistic), "p": float(res.pvalue), "pairs": len(a)}


def goal_test(ratios: list[float], goal: float) -> Optional[dict]:
    """One-sided Wilcoxon signed-rank test (Wilcoxon 1945; ``scipy.stats.wilcoxon``) of the
    paired per-unit ratios against ``goal``: H0 the distribution of ``log(ratio / goal)`` is
    symmetric about a point ≤ 0, H1 about a point > 0 — the per-seed ratio's median exceeds
    ``goal``. Returns the p-value and the count of units; None with fewer than 2 ratios."""
    from scipy.stats import wilcoxon

    if len(ratios) < 2:
        return None
    d = np.log(np.asarray(ratios, dtype=np.float64) / goal)
    if not np.any(d):
        return {"p": 1.0, "units": len(ratios)}
    return {"p": float(wilcoxon(d, alternative="greater").pvalue), "units": len(ratios)}


def censored_data(values: list[float], censored: list[bool]):
    """``scipy.stats.CensoredData`` of ``values``, those flagged ``censored`` right-censored."""
    from scipy.stats import CensoredData

    return CensoredData(uncensored=[v for v, c in zip(values, censored) if not c],
                        right=[v for v, c in zip(values, censored) if c])


def km_median(values: list[float], censored: list[bool]) -> Optional[float]:
    """Kaplan–Meier median of a time to target (Kaplan & Meier 1958; ``scipy.stats.ecdf`` on
    ``CensoredData``): a run that stopped at a cap without the target is right-censored at
    its time, neither dropped nor counted as a success. None when the survival function never
    falls to 0.5 (half the runs or more missed the target) or there are no runs."""
    from scipy.stats import ecdf

    if all(censored):   # also no runs at all
        return None
    sf = ecdf(censored_data(values, censored)).sf
    below = [q for q, p in zip(sf.quantiles, sf.probabilities) if p <= 0.5]
    return float(below[0]) if below else None

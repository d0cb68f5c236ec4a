"""The CI regression gate: compare two runs cell by cell.

A *cell* is (model, model params, dataset, dataset params, device, metric) present in
both runs with status ``ok``. Two rules, both direction-aware:

* **Throughput** (``train_seq_per_s``, ``infer_seq_per_s``; higher is better). The raw
  repeat samples of all seeds are pooled per cell. ``ratio = median(current) /
  median(baseline)``. A regression needs *both* a change larger than the threshold,
  ``ratio < 1 / (1 + threshold)`` (asv's factor rule: 10 % → the baseline is more than
  1.1× faster), *and* significance: a one-sided Mann–Whitney U test (scipy; exact for
  small samples without ties) that current samples are stochastically smaller, with
  ``p ≤ alpha`` (default 0.05; with 3 vs 3 samples, the smoke suite's minimum, the exact
  p reaches 0.05 only when every current sample is below every baseline sample). An
  improvement is the mirror image.

  ``dpbench abtest`` uses the **paired** form instead (``compare_docs(paired=True)``,
  :func:`paired_throughput_row`): there the same trial ran on both sides back to back, so
  the unit is the trial pair — the ratio is the geometric mean of the per-seed ratios of
  trial medians and a one-sided one-sample t-test on their logs decides (samples of one
  trial are correlated, so pooling them over-states the evidence). A committed baseline
  has no pairs, so ``dpbench compare`` keeps the pooled rule.

Which metric follows which rule, its direction and its absolute floor come from the metric
registry (:class:`dpbench.specs.MetricSpec` ``gate``, ``higher_is_better``, ``tolerance``),
so a plugin's metric is gated like a built-in one.

* **Accuracy** (``gate="accuracy"``: ``nrmse_*``, ``mse``, ``cross_entropy``, the long-term
  distances lower is better; ``accuracy``, ``vpt_lyapunov`` (and ``vpt_lyapunov@eps=…``),
  ``climate_ok`` higher). Only with at least 3 seeds per side (else "too few seeds");
  the cell regresses when the seed median moves the bad way by more than
  ``max(rel_tol · |baseline|, abs_floor[metric])`` and a one-sided Mann–Whitney U test over
  the per-seed values gives ``p ≤ alpha`` (:func:`accuracy_rank_row`).

Whether the two runs can be compared at all (:func:`machine_differences`,
:func:`noise_reasons`) is decided from their environment blocks and calibrations;
:func:`apply_context` turns throughput verdicts into ``inconclusive`` where they cannot
(another CPU, ISA, torch or thread count; an oversubscribed or noisy run) and
:func:`exit_code` maps the verdicts to 0 / 1 / 3.

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
from typing import TYPE_CHECKING, Any, Callable

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


def throughput_metrics(registry: "Registry | None" = None) -> tuple[str, ...]:
    """Metrics gated by the throughput rule (``MetricSpec.gate == "throughput"``)."""
    return tuple(s.name for s in _registry(registry).metrics_where(gate="throughput"))


def gated_accuracy(key: str, registry: "Registry | None" = None) -> tuple[bool, float] | None:
    """``(higher is better, tolerance floor)`` of a result key under the accuracy rule, else None."""
    spec = _registry(registry).metric(key)
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
    status: str  # "ok", "regression", "improved", "untested", "inconclusive"
    note: str = ""
    spread: float | None = None  # paired throughput rows: sample sd of the per-pair log ratios

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
           registry: "Registry | None" = None) -> dict[Key, dict[str, Any]]:
    """Per cell: throughput samples per seed (``"trials"``: seed → the trial's samples,
    divided by calibration ``scale``, or by the median of ``relative_to`` on the same
    dataset and device) and per-seed accuracy values (``"seeds"``)."""
    registry = _registry(registry)
    throughput = throughput_metrics(registry)
    cells: dict[Key, dict[str, Any]] = defaultdict(lambda: {"trials": defaultdict(list), "seeds": {}})
    for t in trials_of(doc):
        if t.status != "ok":
            continue
        base = (t.model, format_params(t.model_params), t.dataset, format_params(t.dataset_params), t.device)
        for m in throughput:
            vals = [v / _trial_scale(t.info, scale) for v in t.samples.get(m, [])
                    if v is not None and math.isfinite(v) and v > 0]
            if vals:
                cells[(*base, m, t.block)]["trials"][t.seed] += vals
        for m, v in t.metrics.items():
            if gated_accuracy(m, registry) is not None and v is not None and math.isfinite(v):
                cells[(*base, m, t.block)]["seeds"][t.seed] = float(v)
    if relative_to is not None:
        refs = {k[2:]: statistics.median(pooled(v)) for k, v in cells.items()
                if k[0] == relative_to and not k[1] and k[5] in throughput}
        for key in [k for k in cells if k[5] in throughput]:
            if key[0] == relative_to or key[2:] not in refs:
                del cells[key]
            else:
                cells[key]["trials"] = {s: [v / refs[key[2:]] for v in vals]
                                        for s, vals in cells[key]["trials"].items()}
    return cells


def pooled(cell: dict[str, Any]) -> list[float]:
    """All throughput samples of a cell, every seed's trial together."""
    return [v for vals in cell["trials"].values() for v in vals]


def _labels(key: Key) -> tuple[str, str, str, str]:
    """(model label, dataset label, device, metric) of a cell key."""
    dataset = key[2] + (f":{key[3]}" if key[3] else "") + (f" [{key[6]}]" if len(key) > 6 and key[6] else "")
    return (key[0] + (f":{key[1]}" if key[1] else ""), dataset, key[4], key[5])


def _throughput_verdict(ratio: float, threshold: float, alpha: float, n_units: int, units: str,
                        test: Callable[[bool], float]) -> tuple[str, float | None, str]:
    """(status, p, note) of a throughput cell with ``ratio`` = current / baseline: ``ok``
    inside the threshold; beyond it ``untested`` with fewer than 2 ``units`` on a side,
    else ``test(worse)`` (the one-sided p that current is slower when ``worse``, faster
    otherwise) decides at ``alpha``."""
    if 1 / (1 + threshold) <= ratio <= 1 + threshold:
        return "ok", None, ""
    if n_units < 2:
        return "untested", None, f"too few {units} for a test"
    worse = ratio < 1
    p = test(worse)
    if p <= alpha:
        return ("regression" if worse else "improved"), p, ""
    return "ok", p, f"not significant (p={p:.3g} > {alpha:g})"


def _throughput_row(key: Key, b: list[float], c: list[float], threshold: float, alpha: float) -> Row:
    """Unpaired rule (``dpbench compare``): the samples of all seeds pooled per side, ratio of
    the medians, one-sided Mann–Whitney U test."""
    from scipy.stats import mannwhitneyu  # here, not at import: the CLI's parser needs this module

    mb, mc = statistics.median(b), statistics.median(c)
    status, p, note = _throughput_verdict(
        mc / mb, threshold, alpha, min(len(b), len(c)), "samples",
        lambda worse: float(mannwhitneyu(c, b, alternative="less" if worse else "greater").pvalue))
    return Row(*_labels(key), mb, mc, mc / mb, p, (len(b), len(c)), status, note)


def paired_throughput_row(key: Key, b: dict[int, list[float]], c: dict[int, list[float]], threshold: float,
                          alpha: float, aligned: bool = False) -> Row:
    """Paired rule (``dpbench abtest``): the unit of replication is a *trial pair* — the same
    seed's trial on both sides, run back to back — not a timing sample. The samples of one
    trial share its process and moment (docs/ci.md: ±30 % between trials), so pooling them
    treats correlated samples as independent (pseudo-replication, Hurlbert 1984).

    Per seed present on both sides: ``d = log(median(c[seed]) / median(b[seed]))``. The
    ratio is ``exp(mean d)`` (the geometric mean of the pair ratios; ``baseline`` and
    ``current`` are the geometric means of the trial medians, so ``current / baseline`` is
    that ratio); beyond the threshold a one-sided one-sample t-test of ``mean d < 0``
    (``> 0`` for an improvement; Student 1908, ``scipy.stats.ttest_1samp``) decides at
    ``alpha``. Within an A/A pair the two trials are exchangeable, so ``d`` is symmetric
    about 0, where the t-test is robust; a rank test (Wilcoxon signed-rank) cannot go below
    p = 2^-n one-sided — 1/8 with 3 pairs — too weak for Holm over several cells. Identical
    ``d`` in every pair (zero spread, to 1e-9) gives p = 0 — only reached when ``d ≠ 0``,
    since the ratio must clear the threshold first. Fewer than 2 pairs:
    ``untested``. Seeds present on one side only are not used. ``Row.spread`` is the sample
    standard deviation of ``d`` (what decides the power, docs/ci.md).

    ``aligned``: the k-th samples of a pair were taken moments apart (``dpbench abtest``'s
    interleaved bursts, :func:`dpbench.abtest.time_pair`), so each is compared with its
    partner: ``d = log(median_k(c_k / b_k))``, which cancels the machine's speed at that
    moment; pairs whose sample counts differ fall back to the ratio of medians."""
    seeds = sorted(set(b) & set(c))
    mb = [statistics.median(b[s]) for s in seeds]
    mc = [statistics.median(c[s]) for s in seeds]

    def log_ratio(s: int, x: float, y: float) -> float:
        if aligned and len(b[s]) == len(c[s]):
            return math.log(statistics.median([v / u for u, v in zip(b[s], c[s])]))
        return math.log(y / x)

    d = [log_ratio(s, x, y) for s, x, y in zip(seeds, mb, mc)]
    n = (len(seeds), len(seeds))
    if len(seeds) < 2:
        gb = mb[0] if mb else statistics.median(pooled({"trials": b}))
        gc = mc[0] if mc else statistics.median(pooled({"trials": c}))
        return Row(*_labels(key), gb, gc, gc / gb, None, n, "untested",
                   f"{len(seeds)} trial pair(s); a paired test needs 2 or more seeds on both sides")
    mean = statistics.fmean(d)
    gb, gc = math.exp(statistics.fmean(map(math.log, mb))), math.exp(statistics.fmean(map(math.log, mc)))

    def test(worse: bool) -> float:
        if math.isclose(max(d), min(d), rel_tol=1e-9, abs_tol=1e-12):  # no spread: t is ±inf
            return 0.0
        from scipy.stats import ttest_1samp

        return float(ttest_1samp(d, 0.0, alternative="less" if worse else "greater").pvalue)

    status, p, note = _throughput_verdict(math.exp(mean), threshold, alpha, len(seeds), "trial pairs", test)
    sd = statistics.stdev(d)
    return Row(*_labels(key), gb, gc, math.exp(mean), p, n, status,
               note or f"paired over {len(seeds)} seeds, sd of log ratios {sd:.3g}", sd)


MIN_SEEDS = 3


def accuracy_rank_row(key: Key, b: dict[int, float], c: dict[int, float], rel_tol: float,
                      alpha: float = DEFAULT_ALPHA, registry: "Registry | None" = None) -> Row | None:
    """One accuracy cell: per-seed values of each side (all seeds it has, shared or not).

    Fewer than :data:`MIN_SEEDS` seeds on a side → ``untested`` ("too few seeds"): two
    seeds cannot separate a code change from seed-to-seed (or machine-to-machine) spread.
    Otherwise a regression needs a move in the bad direction of the seed medians by more
    than ``max(rel_tol · |baseline|, floor[metric])`` *and* a one-sided Mann–Whitney U test
    over the seeds with ``p ≤ alpha``; an improvement is the mirror image."""
    rule = gated_accuracy(key[5], registry)
    if not b or not c or rule is None:
        return None
    higher, floor = rule
    vb, vc = list(b.values()), list(c.values())
    mb, mc = statistics.median(vb), statistics.median(vc)
    ratio = mc / mb if mb else (1.0 if mc == mb else math.inf)
    n = (len(vb), len(vc))
    if min(n) < MIN_SEEDS:
        return Row(*_labels(key), mb, mc, ratio, None, n, "untested",
                   f"too few seeds ({n[0]} vs {n[1]}; need {MIN_SEEDS} per side)")
    tol = max(rel_tol * abs(mb), floor)
    worse_by = (mb - mc) if higher else (mc - mb)
    if abs(worse_by) <= tol:
        return Row(*_labels(key), mb, mc, ratio, None, n, "ok", f"tolerance {tol:.3g}")
    from scipy.stats import mannwhitneyu

    worse = worse_by > 0
    smaller = (worse and higher) or (not worse and not higher)  # is current expected to be smaller?
    p = float(mannwhitneyu(vc, vb, alternative="less" if smaller else "greater").pvalue)
    if p <= alpha:
        return Row(*_labels(key), mb, mc, ratio, p, n, "regression" if worse else "improved", f"tolerance {tol:.3g}")
    return Row(*_labels(key), mb, mc, ratio, p, n, "ok", f"not significant (p={p:.3g} > {alpha:g})")


def compare_docs(baseline: dict[str, Any], current: dict[str, Any], threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, acc_tolerance: float = DEFAULT_ACC_TOLERANCE,
                 normalize: bool = False, names: tuple[str, str] = ("baseline", "current"),
                 relative_to: str | None = None, registry: "Registry | None" = None,
                 paired: bool = False, aligned: bool = False) -> list[Row]:
    """All comparable cells of two validated ``results.json`` documents (which metrics, their
    rules, directions and floors: from the metric registry, default the process one).
    ``paired``: throughput by :func:`paired_throughput_row` (trials of the same seed on both
    sides are pairs: ``dpbench abtest``; ``aligned``: their samples were interleaved, see
    there), else by the pooled-sample rule (a committed baseline).

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
            if not (cb[key]["trials"] and cc[key]["trials"]):
                continue
            if paired:
                rows.append(paired_throughput_row(key, cb[key]["trials"], cc[key]["trials"], threshold, alpha,
                                                  aligned))
            else:
                rows.append(_throughput_row(key, pooled(cb[key]), pooled(cc[key]), threshold, alpha))
        else:
            row = accuracy_rank_row(key, cb[key]["seeds"], cc[key]["seeds"], acc_tolerance, alpha, registry)
            if row is not None:
                rows.append(row)
    if not rows:
        raise UsageError(f"nothing comparable: {names[0]} and {names[1]} share no (model, dataset, device, "
                         "metric) with finished trials")
    return rows


#: calibration medians further apart than this factor mean another (or a throttled) machine
CALIBRATION_FACTOR = 1.5
#: within-run calibration spread ((max − min) / median) above which a run counts as noisy
NOISY_SPREAD = 0.5


def _cal_median(doc: dict[str, Any]) -> float | None:
    cal = doc.get("calibration")
    med = cal.get("median") if isinstance(cal, dict) else None
    return float(med) if isinstance(med, (int, float)) and not isinstance(med, bool) and med > 0 else None


def machine_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What tells the two runs' machines apart, one short phrase each: CPU model, the ISA
    flags of :func:`dpbench.environment.cpu_flags`, torch version, torch threads, worker
    processes, and
    calibration medians more than :data:`CALIBRATION_FACTOR` apart. Fields a run did not
    record are not compared."""
    eb, ec = baseline.get("environment") or {}, current.get("environment") or {}
    out = []
    for field, what in (("cpu", "CPU"), ("torch", "torch"), ("torch_threads", "threads"), ("workers", "workers")):
        if eb.get(field) is not None and ec.get(field) is not None and eb[field] != ec[field]:
            out.append(f"{what} {eb[field]} vs {ec[field]}")
    fb, fc = eb.get("cpu_flags"), ec.get("cpu_flags")
    if isinstance(fb, list) and isinstance(fc, list) and set(fb) != set(fc):
        only_b, only_c = sorted(set(fb) - set(fc)), sorted(set(fc) - set(fb))
        parts = ([f"only baseline {','.join(only_b)}"] if only_b else []) + \
                ([f"only current {','.join(only_c)}"] if only_c else [])
        out.append("ISA " + "; ".join(parts))
    mb, mc = _cal_median(baseline), _cal_median(current)
    if mb and mc and max(mb, mc) / min(mb, mc) > CALIBRATION_FACTOR:
        out.append(f"calibration {mb:.3g} vs {mc:.3g} workloads/s (another machine, or a busy one)")
    return out


def noise_reasons(doc: dict[str, Any], name: str) -> list[str]:
    """Why the throughput of one run is not trustworthy: a 1-minute load average at the start
    or end of the run at or above its core count (oversubscribed), or a calibration spread
    within the run above :data:`NOISY_SPREAD`."""
    env = doc.get("environment") or {}
    cores = env.get("cpu_count")
    out = []
    for field, when in (("load_start", "start"), ("load_end", "end")):
        load = env.get(field)
        if cores and isinstance(load, list) and load and load[0] >= cores:
            out.append(f"{name}: load {load[0]:.1f} on {cores} cores at {when}")
    cal = doc.get("calibration")
    samples = [s for s in (cal.get("samples") or []) if isinstance(s, (int, float)) and s > 0] \
        if isinstance(cal, dict) else []
    if len(samples) >= 3:
        spread = (max(samples) - min(samples)) / statistics.median(samples)
        if spread > NOISY_SPREAD:
            out.append(f"{name}: calibration spread {spread:.0%}")
    return out


def _first(reasons: list[str]) -> str:
    return reasons[0] + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")


def apply_context(rows: list[Row], machine: list[str], noise: list[str], normalize: bool) -> list[Row]:
    """Verdicts in the light of the two runs' machines (``machine``) and noise (``noise``):
    throughput regressions and improvements become ``inconclusive (noisy run: ...)``; with
    other machines every throughput verdict becomes ``inconclusive (different machine:
    ...)`` unless ``normalize``; accuracy verdicts keep their status and say that the
    machines differ. ``rows`` are changed in place and returned."""
    for r in rows:
        if r.metric in throughput_metrics():
            if machine and not normalize:
                r.status, r.note = "inconclusive", f"different machine: {_first(machine)}"
            elif noise and r.status in ("regression", "improved"):
                r.status, r.note = "inconclusive", f"noisy run: {_first(noise)}"
        elif machine:
            r.note = (f"{r.note}; " if r.note else "") + f"machines differ: {_first(machine)}"
    return rows


EXIT_OK, EXIT_REGRESSION, EXIT_INCONCLUSIVE = 0, 1, 3


def exit_code(rows: list[Row]) -> int:
    """1 when any row regressed, else 3 when any is inconclusive, else 0."""
    if any(r.regression for r in rows):
        return EXIT_REGRESSION
    return EXIT_INCONCLUSIVE if any(r.status == "inconclusive" for r in rows) else EXIT_OK


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p values (Holm 1979, Scand. J. Statist. 6:65), in input
    order: the i-th smallest of m p values times (m − i + 1), made monotone, capped at 1."""
    m = len(pvalues)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def holm_throughput(rows: list[Row], alpha: float = DEFAULT_ALPHA) -> list[Row]:
    """Family-wise control over all throughput cells: a throughput regression or improvement
    stands only when its Holm-adjusted p (over every throughput cell, untested ones counted
    as p = 1) is still ≤ ``alpha``; the others become ``ok`` with a note. In place; returned."""
    cells = [r for r in rows if r.metric in throughput_metrics()]
    adjusted = holm([r.p_value if r.p_value is not None else 1.0 for r in cells])
    for r, p in zip(cells, adjusted):
        if r.status in ("regression", "improved") and p > alpha:
            r.status, r.note = "ok", f"not significant after Holm over {len(cells)} cells (p={p:.2g})"
    return rows

"""Verdicts in the report: sentences from hand-made trials with known outcomes (a clear win,
no difference, too few seeds), the Holm correction, bootstrap intervals, the Friedman test
and the critical-difference diagram file."""
from __future__ import annotations

import json
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
from scipy.stats import friedmanchisquare, ttest_ind

from dpbench.compare import holm
from dpbench.report import verdicts as V
from dpbench.report.build import build_report
from dpbench.results import TrialResult


def trial(model: str, seed: int, value: float, dataset: str = "copy", params: dict | None = None,
          block: str = "recall", metric: str = "accuracy") -> TrialResult:
    params = {"lag": 20} if params is None else params
    return TrialResult(f"{model}-{dataset}-{params}-{seed}", model, {}, dataset, params, seed, "cpu", "ok",
                       None, block, metrics={metric: value})


def block_of(values: dict[str, list[float]], **kw) -> list[TrialResult]:
    return [trial(m, s, v, **kw) for m, vals in values.items() for s, v in enumerate(vals)]


WIN = {"bahdanau": [0.30, 0.31, 0.29, 0.32, 0.28], "lstm": [0.12, 0.11, 0.13, 0.10, 0.14]}


def sentences(trials):
    verdicts = V.dataset_verdicts(trials)
    return V.block_sentences(verdicts), verdicts


def test_clear_win_is_a_sentence_with_the_holm_adjusted_p():
    lines, verdicts = sentences(block_of(WIN))
    p_one_sided = float(ttest_ind(WIN["bahdanau"], WIN["lstm"], equal_var=False, alternative="greater").pvalue)
    # one pair, two one-sided hypotheses in the block's family: Holm multiplies the smaller by 2
    assert lines == [f"bahdanau recalls copy:lag=20 better than lstm (accuracy 0.3 vs 0.12, "
                     f"p = {2 * p_one_sided:.2g}, δ = +1.00, 5 seeds)"]
    pair = verdicts[0].pairs[0]
    assert pair.verdict == "better" and pair.effect == 1.0


def test_three_seeds_can_carry_a_verdict_with_welch_but_never_with_mann_whitney():
    # 3 well-separated seeds per side, 4 models: Welch's test rejects after Holm; the rank test
    # cannot (its smallest one-sided p is 1/20, Holm multiplies it by the family size)
    vals = {"esn": [10.6, 10.1, 10.9], "lstm": [2.3, 2.4, 3.1], "gru": [2.0, 2.8, 2.7], "fnn": [1.0, 1.1, 0.9]}
    welch = V.dataset_verdicts(block_of(vals, metric="vpt_lyapunov"))[0]
    assert {p.model: p.verdict for p in welch.pairs} == {"esn": "better", "fnn": "worse",
                                                          "gru": "no significant difference"}
    mwu = V.dataset_verdicts(block_of(vals, metric="vpt_lyapunov"), test="mwu")[0]
    assert {p.verdict for p in mwu.pairs} == {"no significant difference"}
    with pytest.raises(ValueError, match="test='z'; valid: welch, mwu"):
        V.dataset_verdicts(block_of(vals), test="z")


def test_error_metrics_are_tested_on_a_log_scale():
    # NRMSE over decades: on a linear scale the 1e-7 model's tiny spread next to lstm's large
    # one hides nothing, but the log scale is what the test must use
    x, y = [8e-8, 2e-7, 5e-8], [3.5e-3, 4.1e-3, 2.9e-3]
    pair = V._pair("ngrc", "lstm", x, y, higher=False)
    expected = float(ttest_ind(np.log10(x), np.log10(y), equal_var=False, alternative="less").pvalue)
    assert pair.p_better == pytest.approx(expected)
    # values with no spread at all: different means a sure difference, equal means none
    same = V._pair("a", "b", [1.0] * 3, [1.0] * 3, higher=True)
    assert (same.p_better, same.p_worse) == (1.0, 1.0)
    apart = V._pair("a", "b", [1.0] * 3, [0.5] * 3, higher=True)
    assert (apart.p_better, apart.p_worse) == (0.0, 1.0)


def test_each_unordered_pair_is_tested_once():
    vals = {**WIN, "linear": [0.2, 0.21, 0.19, 0.2, 0.22], "gru": [0.1, 0.2, 0.15, 0.12, 0.11]}
    pairs = V.dataset_verdicts(block_of(vals), classical={"linear"})[0].pairs
    keys = [frozenset((p.model, p.reference)) for p in pairs]
    assert len(keys) == len(set(keys)) == 5  # 3 vs lstm, then 2 vs linear (lstm-linear not again)


def test_lower_is_better_metric_reverses_the_direction():
    vals = {"fnn": [0.5, 0.52, 0.51, 0.49], "lstm": [0.2, 0.21, 0.19, 0.22]}  # fnn has the larger NRMSE
    lines, _ = sentences(block_of(vals, dataset="lorenz", params={}, block="f", metric="nrmse_1step"))
    assert lines[0].startswith("fnn forecasts lorenz worse than lstm (NRMSE 1-step 0.505 vs 0.205")
    assert "δ = -1.00, 4 seeds" in lines[0]


def test_overlapping_seeds_are_no_significant_difference():
    vals = {"gru": [0.20, 0.35, 0.25, 0.30, 0.15], "lstm": [0.22, 0.33, 0.18, 0.28, 0.26]}
    lines, verdicts = sentences(block_of(vals))
    assert lines[0].startswith("no significant difference between gru and lstm on copy:lag=20")
    assert verdicts[0].pairs[0].verdict == "no significant difference"


def test_fewer_than_three_seeds_is_never_a_win():
    vals = {"bahdanau": [0.9, 0.95], "lstm": [0.1, 0.12], "gru": [0.1, 0.2, 0.3]}
    lines, verdicts = sentences(block_of(vals))
    assert {p.verdict for p in verdicts[0].pairs} == {"too few seeds"}
    assert all("better" not in ln for ln in lines)
    assert lines == ["too few seeds for any verdict: 2 pairs with 2/3 seeds per model (need 3 per side); "
                     "run with `--seeds 3` or more"]
    # mixed block: the pair with seeds is tested, the other says so in its own sentence
    vals["lstm"] = [0.1, 0.12, 0.11]
    lines, _ = sentences(block_of(vals))
    assert any(ln.startswith("bahdanau vs lstm on copy:lag=20: too few seeds (2 vs 3") for ln in lines)


def test_holm_matches_statsmodels_and_corrects_across_the_block():
    ps = [0.01, 0.04, 0.03, 0.005, 0.5]
    ours = holm(ps)
    assert ours == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])  # hand-computed step-down
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    assert ours == pytest.approx(list(multipletests(ps, method="holm")[1]))
    # the same clear win alone, then in a block with three more datasets: its p grows with the family
    alone = V.dataset_verdicts(block_of(WIN))[0].pairs[0].adj_better
    crowd = block_of(WIN) + [t for lag in (30, 40, 50) for t in block_of(WIN, params={"lag": lag})]
    together = [v.pairs[0].adj_better for v in V.dataset_verdicts(crowd)]
    assert len(together) == 4 and all(p == pytest.approx(4 * alone) for p in together)


def test_bootstrap_interval_contains_the_median_and_is_seeded():
    vals = [0.1, 0.4, 0.2, 0.35, 0.3]
    lo, hi = V.median_ci(vals)
    assert lo <= float(np.median(vals)) <= hi and lo >= min(vals) and hi <= max(vals) and lo < hi
    assert V.median_ci(vals) == (lo, hi)
    assert V.median_ci([0.2, 0.2, 0.2]) == (0.2, 0.2)


def test_best_classical_baseline_is_a_second_reference():
    vals = {**WIN, "persistence": [0.05] * 5, "linear": [0.2, 0.21, 0.19, 0.2, 0.22]}
    verdicts = V.dataset_verdicts(block_of(vals), classical={"persistence", "linear"})
    refs = {p.reference for p in verdicts[0].pairs}
    assert refs == {"lstm", "linear"}  # linear is the better classical model here
    assert not any(p.reference == "persistence" for p in verdicts[0].pairs)
    assert {p.reference for p in V.dataset_verdicts(block_of(vals))[0].pairs} == {"lstm"}


def forecast_block() -> list[TrialResult]:
    """4 models on 3 datasets, 3 seeds: a clear order a > b > c > lstm in VPT."""
    out = []
    for d in ("lorenz", "henon", "narma10"):
        for rank, m in enumerate(("a", "b", "c", "lstm")):
            out += [trial(m, s, 3.0 - rank + 0.01 * s, dataset=d, params={}, block="maps", metric="vpt_lyapunov")
                    for s in range(3)]
    return out


def test_friedman_over_datasets_and_cd_diagram_written(tmp_path):
    pytest.importorskip("scikit_posthocs")
    fr = V.friedman_block("maps", V.dataset_verdicts(forecast_block()), tmp_path)
    expected = friedmanchisquare(*[[3.0 - r + 0.01] * 3 for r in range(4)])  # per-dataset seed medians
    assert fr.units == "datasets" and fr.n_units == 3
    assert fr.p == pytest.approx(expected.pvalue) and fr.statistic == pytest.approx(expected.statistic)
    assert fr.mean_ranks == {"a": 1.0, "b": 2.0, "c": 3.0, "lstm": 4.0}
    img = mpimg.imread(fr.figure)
    assert fr.figure.name == "cd-maps.png" and img.shape[0] > 50 and float(img[..., :3].std()) > 0.02


def test_one_dataset_block_ranks_over_seeds_and_needs_three_models(tmp_path):
    three = V.dataset_verdicts(block_of({**WIN, "gru": [0.2] * 5}))
    fr = V.friedman_block("recall", three, tmp_path)
    assert fr.units == "seeds" and fr.n_units == 5
    two = V.dataset_verdicts(block_of(WIN))
    assert V.friedman_block("recall", two, tmp_path) == "Friedman test needs ≥ 3 models on ≥ 2 seeds (have 2 on 5)"


def write_run(tmp_path, trials) -> None:
    doc = {"schema_version": 1, "run_id": "v", "environment": {}, "config": {}, "records": [], "derived": [],
           "trials": [t.__dict__ for t in trials]}
    (tmp_path / "results.json").write_text(json.dumps(doc))


def test_report_opens_with_verdicts(tmp_path):
    pytest.importorskip("scikit_posthocs")
    write_run(tmp_path, block_of(WIN) + forecast_block())
    rep = build_report(tmp_path)
    assert rep.sections[0] == "Verdicts"
    md = rep.markdown
    assert md.index("## Verdicts") < md.index("## Accuracy")
    assert "bahdanau recalls copy:lag=20 better than lstm" in md
    assert "![critical-difference diagram, maps](figures/cd-maps.png)" in md
    assert (tmp_path / "figures" / "cd-maps.png").is_file() and rep.figures[0].name == "cd-maps.png"


def test_report_without_the_stats_extra_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "scikit_posthocs", None)  # import fails
    write_run(tmp_path, forecast_block())
    md = build_report(tmp_path).markdown
    notes = [ln for ln in md.splitlines() if "pip install 'dpbench[stats]'" in ln]
    assert len(notes) == 1 and "Friedman test over 3 datasets" in notes[0]
    assert "cd-maps.png" not in md

"""``dpbench stability``: rank correlation and flipped verdicts between two runs."""
from __future__ import annotations

import math

import pytest

from dpbench.cli import main
from dpbench.params import UsageError
from dpbench.report.stability import compare_runs, fraction_stable
from dpbench.results import RunWriter, TrialResult


def _trials(scores: dict[str, dict[str, float]], metric_of: dict[str, str], seeds=(0, 1)) -> list[TrialResult]:
    """One ok trial per (dataset, model, seed); seed s gets the score ± 0.01·s·(-1)^s, so
    seed means equal the given scores."""
    out = []
    for ds, by_model in scores.items():
        for model, value in by_model.items():
            for s in seeds:
                jitter = 0.01 * (1 if s % 2 else -1) if len(seeds) == 2 else 0.0
                out.append(TrialResult(f"{ds}{model}{s}", model, {}, ds, {}, s, "cpu", "ok", None, "b",
                                       metrics={metric_of[ds]: value + jitter}))
    return out


METRIC = {"copy": "accuracy", "henon": "nrmse_1step"}
A = {"copy": {"m1": 0.1, "m2": 0.2, "m3": 0.3, "m4": 0.4}, "henon": {"m1": 0.1, "m2": 0.2, "m3": 0.3}}
B = {"copy": {"m1": 0.1, "m2": 0.3, "m3": 0.2, "m4": 0.4}, "henon": {"m1": 0.3, "m2": 0.2, "m3": 0.1}}


def test_known_rank_correlations_and_flips():
    rows = {r.dataset: r for r in compare_runs(_trials(A, METRIC), _trials(B, METRIC))}
    copy, henon = rows["copy [b]"], rows["henon [b]"]
    # one adjacent swap among four: ρ = 1 - 6·(1² + 1²) / (4·(4² - 1)) = 0.8
    assert copy.metric == "accuracy" and copy.rho == pytest.approx(0.8)
    assert copy.flips == [("m3", "m2")]  # higher accuracy wins: m3 beat m2 in A, m2 beats m3 in B
    assert henon.metric == "nrmse_1step" and henon.rho == pytest.approx(-1.0)
    assert len(henon.flips) == 3 and ("m1", "m3") in henon.flips  # lower NRMSE wins in A: m1
    assert fraction_stable(list(rows.values()), 0.8) == 0.5


def test_identical_runs_are_perfectly_stable():
    rows = compare_runs(_trials(A, METRIC), _trials(A, METRIC))
    assert all(r.rho == pytest.approx(1.0) and not r.flips for r in rows)


def test_models_missing_from_one_run_are_left_out_and_two_models_give_plus_or_minus_one():
    b = {"copy": {"m1": 0.5, "m2": 0.2}}
    (row,) = compare_runs(_trials(A, METRIC), _trials(b, METRIC))
    assert set(row.means_a) == {"m1", "m2"} and row.rho == -1.0 and row.flips == [("m2", "m1")]


def test_failed_trials_do_not_count():
    a = _trials(A, METRIC)
    for t in a:
        if t.model == "m4":
            t.status = "diverged"
    (row, _) = sorted(compare_runs(a, _trials(A, METRIC)), key=lambda r: r.dataset)
    assert "m4" not in row.means_a


def test_no_dataset_in_common_is_a_usage_error():
    with pytest.raises(UsageError, match="share no dataset"):
        compare_runs(_trials({"copy": A["copy"]}, METRIC), _trials({"henon": A["henon"]}, METRIC))
    with pytest.raises(UsageError, match="--metric 'nope'"):
        compare_runs(_trials(A, METRIC), _trials(B, METRIC), metric="nope")


def _write(run_dir, trials):
    run_dir.mkdir()
    w = RunWriter(run_dir, run_dir.name, {}, {})
    for t in trials:
        w.append(t)
    return run_dir


def test_cli_prints_the_table_and_exits_0(tmp_path, capsys):
    a = _write(tmp_path / "a", _trials(A, METRIC))
    b = _write(tmp_path / "b", _trials(B, METRIC))
    assert main(["stability", str(a), str(b), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| copy [b]" in out and "0.80" in out and "-1.00" in out and "m3 > m2 became m2 > m3" in out
    assert "50% of 2 datasets" in out


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    a = _write(tmp_path / "a", _trials(A, METRIC))
    assert main(["stability", str(a), str(tmp_path / "missing")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln]
    assert len(err) == 1 and "missing" in err[0]
    assert main(["stability", str(a), str(a), "--threshold", "2"]) == 2
    assert math.isfinite(1.0)

"""The run's terminal summary (issue 21): fits 120 columns, 3 significant digits, rounding
noise as 0, the budget outliers and the models' own metrics shown."""
from __future__ import annotations

from dpbench.metrics import format_mean_std
from dpbench.report.terminal import summary_text
from dpbench.results import TrialResult

LONG = {"lag": 5, "symbols": 3, "n_train": 64, "n_val": 32, "n_test": 32, "alphabet": 8}


def trial(model: str, seed: int, block: str = "recall", **metrics: float) -> TrialResult:
    base = {"accuracy": 0.5 + 0.01 * seed, "cross_entropy": 1.2345678, "baseline_cross_entropy": 2.0,
            "param_count": 1934.0 + seed, "train_seq_per_s": 123.456 * (1 + seed), "infer_seq_per_s": 98765.4,
            "peak_memory_mb": 0.25, "budget_ok": 1.0}
    return TrialResult(f"{model}{seed}{block}", model, {"hidden": 16} if model == "lstm" else {}, "copy", LONG,
                       seed, "cpu", block=block, metrics={**base, **metrics})


def test_numbers_have_three_significant_digits_and_noise_is_zero():
    assert format_mean_std(1.26, 2.2e-16) == "1.26 ± 0"
    assert format_mean_std(1.2649, 0.01234) == "1.26 ± 0.0123"
    assert format_mean_std(12345.6, 321.4) == "12346 ± 321"
    assert format_mean_std(float("nan"), 1.0) == "-"


def test_summary_fits_120_columns_and_marks_budget_and_model_metrics():
    trials = [trial(m, s, b, **extra) for b in ("recall", "recall-long-block-name")
              for m, extra in (("lstm", {}), ("bahdanau", {}), ("hybrid", {"budget_ok": 0.0, "sigma_hat": 10.01}),
                               ("plastic-rnn", {"cross_entropy": 1.2345678 + 2e-16}))
              for s in range(3)]
    text = summary_text(trials, [])
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert sum(line.startswith("recall: copy:") for line in lines) == 2  # one table per block
    assert "(cpu, 3 seeds, mean ± std over seeds)" in text
    assert any(line.startswith("hybrid*") for line in lines) and "budget_ok = 0" in text
    assert not any(line.startswith("lstm*") for line in lines)
    row = next(line for line in lines if line.startswith("plastic-rnn"))
    assert "1.23 ± 0 " in row  # identical seeds up to rounding: no float noise
    metric = next(line for line in lines if "σ learned" in line)  # the registered title of sigma_hat
    assert "hybrid" in metric and "10 ± 0" in metric


def test_single_seed_tables_drop_the_spread():
    text = summary_text([trial("lstm", 0), trial("bahdanau", 0)], [])
    assert "±" not in text.split("\n", 1)[1] and "1 seed)" in text

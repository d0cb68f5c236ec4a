"""``python -m dpbench.ops.dnc_isolation``: the before/after measurement around a DNC trial
(issue 19, no side effects). The figures are benchmarks; these tests check the bookkeeping."""
from __future__ import annotations

import os
import statistics

import pytest
import torch

from dpbench.ops import dnc_isolation


def test_the_load_only_variant_runs_no_trial(monkeypatch):
    calls = []
    monkeypatch.setattr("dpbench.ops.dnc_bench.run_sequence", lambda *a, **k: calls.append(a))
    assert dnc_isolation.dnc_trial(impl="load").startswith("load only")
    assert calls == []
    assert dnc_isolation.dnc_trial(sequences=2, impl="reference").startswith("reference")
    assert len(calls) == 2


def test_the_control_ratio_is_the_median_of_paired_bursts(monkeypatch):
    """With the DNC trial replaced by nothing, the effect is after/before of the medians of
    this process's bursts over its control partner's, pair by pair."""
    monkeypatch.setattr(dnc_isolation, "dnc_trial", lambda impl="auto": "stub")
    cpus, threads = os.sched_getaffinity(0), torch.get_num_threads()
    try:  # it pins this process to one core and one thread: undo that for the tests after it
        out = dnc_isolation.measure_with_control(rounds=3)
    finally:
        os.sched_setaffinity(0, cpus)
        torch.set_num_threads(threads)
    for phase in ("before", "after"):
        this, control = out[phase]["this"], out[phase]["control"]
        assert len(this) == len(control) == 3 and min(this + control) > 0
        assert out[f"ratio_to_control_{phase}"] == pytest.approx(
            statistics.median(a / b for a, b in zip(this, control)))
    assert out["dnc_effect"] == pytest.approx(
        out["ratio_to_control_after"] / out["ratio_to_control_before"])

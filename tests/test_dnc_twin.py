"""`dpbench bench dnc-twin` (dpbench/ops/dnc_twin.py): reference and fused DNCs trained on
identical batches stay together in float64 (the same learner, not only the same function),
the control pair carries its one-ulp perturbation, and the command's report and bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dpbench.ops.dnc_learn import LearnConfig
from dpbench.ops.dnc_twin import TwinResult, growth_steps, twin

SMALL = dict(task="copy", lag=3, symbols=3, alphabet=4, hidden=16, slots=10, word=6, batch=8)


@pytest.fixture(scope="module")
def fused(fused_kernels):
    """The extension (conftest's fused_kernels), under the name these tests take."""


def test_float64_twins_train_along_the_same_trajectory(fused):
    r = twin(LearnConfig(**SMALL), "float64", steps=12, every=1)
    assert r.steps == list(range(1, 13))
    # Adam's first step is ±lr per parameter: one gradient of the wrong sign would show as
    # d = 2·lr / ‖θ‖ ≈ 7e-4 at once (‖θ‖ ≈ 8 here); a wrong magnitude as ≫ 1e-12 within a few steps
    assert max(r.distance) < 1e-11, r.distance
    assert r.loss_a == pytest.approx(r.loss_b, rel=1e-12, abs=0)


def test_the_control_pair_starts_one_float32_rounding_apart():
    r = twin(LearnConfig(**SMALL), "control", steps=3, every=1)
    assert 1e-9 < r.distance[0] < 1e-4      # perturbed (ε = 1e-7), but not by much


def test_growth_steps_is_the_first_step_at_the_level():
    r = TwinResult(pair="float32", steps=[1, 10, 20, 30], distance=[1e-7, 1e-5, 2e-2, 0.5])
    assert growth_steps(r, 1e-2) == 20 and growth_steps(r, 1e-8) == 1
    assert growth_steps(r, 1.0) is None


def test_unknown_pair_is_rejected():
    with pytest.raises(ValueError, match="float16"):
        twin(LearnConfig(**SMALL), "float16", steps=1)


def test_command_writes_the_report_and_the_plot(tmp_path, fused):
    out = subprocess.run([sys.executable, "-m", "dpbench.cli", "bench", "dnc-twin", "--task",
                          "copy", "--steps", "3", "--every", "1", "--slots", "8", "--word", "4",
                          "--pairs", "float64,control", "--jobs", "2", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads((tmp_path / "dnc_twin.json").read_text())
    assert [p["pair"] for p in data["pairs"]] == ["float64", "control"]
    assert data["summary"]["float64"]["final_distance"] < 1e-11
    assert data["summary"]["control"]["final_distance"] > 1e-9
    assert data["pairs"][0]["steps"] == [1, 2, 3]
    assert (tmp_path / "distance.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, named", [(["--pairs", "float16"], "float16"),
                                         (["--task", "sorting"], "sorting"),
                                         (["--steps", "0"], "--steps=0")])
def test_command_rejects_bad_input_in_one_line(argv, named):
    out = subprocess.run([sys.executable, "-m", "dpbench.cli", "bench", "dnc-twin", *argv],
                         capture_output=True, text=True)
    assert out.returncode == 2 and named in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0

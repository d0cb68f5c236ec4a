"""The live progress display (issue 21): redrawn on a terminal, plain lines with a
heartbeat elsewhere."""
from __future__ import annotations

import io
import re
import time

from rich.console import Console

from dpbench.harness.progress import Progress, clock
from dpbench.harness.suite import TrainConfig, Trial, EvalConfig
from dpbench.results import TrialResult

TRIAL = Trial("lstm", {}, "lorenz", {}, 0, "cpu", TrainConfig(steps=300), EvalConfig())


def ok(trial: Trial, **metrics: float) -> TrialResult:
    return trial.result(metrics=metrics)


def test_clock_formats_hours_minutes_seconds():
    assert clock(0) == "0:00:00"
    assert clock(3725.4) == "1:02:05"
    assert clock(float("nan")) == "--:--"


def test_plain_lines_with_elapsed_eta_and_a_heartbeat_inside_a_long_trial():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with Progress(3, console=console, heartbeat=0.2) as progress:
        progress.start(1, TRIAL)
        progress.step(50, 0.125, 0.5)
        time.sleep(0.8)  # nothing reported: the heartbeat speaks up
        progress.done(TRIAL, ok(TRIAL, vpt_lyapunov=1.23456))
        progress.start(2, TRIAL)
    lines = out.getvalue().splitlines()
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in a log
    assert lines[0].startswith("[1/3] lstm on lorenz seed 0 cpu ... (elapsed 0:00:00, ETA --:--")
    beats = [ln for ln in lines if ln.startswith("  ... [1/3]")]
    assert len(beats) >= 2, lines
    assert "step 50/300 loss 0.125 best val 0.5" in beats[0]
    done = next(ln for ln in lines if ln.startswith("[1/3] lstm on lorenz seed 0 cpu: ok"))
    assert "vpt_lyapunov=1.23 " in done
    eta = re.search(r"ETA (\d+):(\d\d):(\d\d)", lines[-1])  # known after one trial: ~2 x 0.8 s
    assert eta and int(eta.group(1)) == 0 and int(eta.group(2)) == 0 and 1 <= int(eta.group(3)) <= 10


def test_heartbeat_waits_while_lines_keep_coming():
    out = io.StringIO()
    with Progress(50, console=Console(file=out, force_terminal=False, width=200), heartbeat=5.0) as p:
        for i in range(1, 4):
            p.start(i, TRIAL)
            p.done(TRIAL, ok(TRIAL, accuracy=1.0))
    assert not [ln for ln in out.getvalue().splitlines() if ln.startswith("  ...")]


def test_terminal_display_redraws_the_bar_and_the_current_trial_in_place():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with Progress(2, console=console) as progress:
        progress.start(1, TRIAL)
        progress.step(120, 0.0312, 0.0401)
        progress.done(TRIAL, ok(TRIAL, accuracy=0.75))
        progress.start(2, TRIAL)
        progress.step(10, 2.5)
    text = out.getvalue()
    assert "\x1b[" in text  # cursor movement: the display is redrawn, not appended
    assert "step 120/300 loss 0.0312 best val 0.0401" in text
    assert "1/2" in text and "ETA" in text and "elapsed" in text
    assert "[1/2] lstm on lorenz seed 0 cpu: ok accuracy=0.75" in text  # finished trials stay above
    assert all(len(ln) <= 120 for ln in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).splitlines())


def test_quiet_prints_nothing():
    out = io.StringIO()
    with Progress(1, stream=out, quiet=True) as progress:
        progress.start(1, TRIAL)
        progress.step(1, 1.0)
        progress.done(TRIAL, ok(TRIAL))
    assert out.getvalue() == ""

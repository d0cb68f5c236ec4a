"""`dpbench bench dnc-learn` (dpbench/ops/dnc_learn.py): the curriculum's batches, the time to
accuracy bookkeeping, and the command end to end on a tiny budget."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

from dpbench.ops.dnc_learn import (LearnConfig, LearnResult, Task, accuracy_at, lesson_times,
                                   over_seeds, seconds_to, summary, time_to_target_test,
                                   train_to_target)
from dpbench.ops.dnc_learn_stats import (goal_test, km_median, mean_ratio_ci, olympic_mean,
                                         paired_ratio_ci, rank_correlation)


def test_copy_lessons_are_left_padded_windows_of_the_final_task():
    task = Task(LearnConfig(task="copy", lag=10, symbols=10))
    assert task.lessons == [2, 4, 6, 8, 10] and task.steps == 30
    rng = np.random.default_rng(0)
    x, y, mask = task.batch(64, 1, rng)          # lesson 4: 1..4 symbols
    assert x.shape == (64, 30, 10) and y.shape == mask.shape == (64, 30)
    assert torch.all(x.sum(-1) == 1)              # one-hot everywhere, padding = blank
    counts = mask.sum(1)
    assert counts.min() >= 1 and counts.max() <= 4
    for i in range(64):                           # the recalled symbols are the first ones
        k = int(counts[i])
        start = 30 - (10 + 2 * k)
        assert torch.equal(y[i, -k:], x[i, start:start + k].argmax(-1))
        assert torch.all(x[i, :start, 0] == 1)    # blank tokens before the window
    xe, _, me = task.batch(8, 4, rng, exact=True)
    assert torch.all(me.sum(1) == 10)


def test_associative_recall_lessons_grow_the_item_count():
    task = Task(LearnConfig(task="associative-recall", items=6))
    assert task.lessons == [2, 3, 4, 5, 6] and task.output_steps == 3
    x, y, mask = task.batch(16, 0, np.random.default_rng(1), exact=True)
    assert x.shape == (16, task.steps, 8) and y.shape == (16, 3) and mask.all()
    assert torch.all(x[:, :, 6].sum(1) == 2)      # exactly two items at lesson 0


def test_bookkeeping_of_time_to_accuracy():
    curve = [[50, 10.0, 2, 0.5, 0.2, 1.0], [100, 20.0, 2, 0.95, 0.5, 0.5],
             [150, 30.0, 4, 0.9, 0.92, 0.3]]
    r = LearnResult(config={"advance": 0.9, "task": "copy", "impl": "fused"}, curve=curve,
                    reached=True, steps=150, seconds=30.0)
    assert seconds_to(r, 0.9) == 30.0 and seconds_to(r, 0.99) == float("inf")
    assert accuracy_at(r, 25.0) == 0.5 and accuracy_at(r, 5.0) == 0.0
    assert lesson_times(r) == {"2": 20.0, "4": 30.0}
    ref = LearnResult(config={"advance": 0.9, "task": "copy", "impl": "reference"},
                      curve=[[50, 40.0, 2, 0.3, 0.1, 2.0]], steps=50, seconds=40.0)
    s = summary([ref, r])["copy"]
    assert s["reference_accuracy_at_fused_end"] == 0.0          # no evaluation by 30 s
    assert s["reference_over_fused_time_to_target"] is None     # the reference never got there
    assert s["step_time_ratio"] == pytest.approx((40 / 50) / (30 / 150))
    assert s["reference_over_fused_lesson_time"] == {}          # the reference passed none
    ref.curve.append([100, 80.0, 2, 0.95, 0.3, 1.0])            # lesson 2 passed at 80 s
    assert summary([ref, r])["copy"]["reference_over_fused_lesson_time"] == {"2": 4.0}


def test_train_to_target_stops_at_the_cap_and_records_a_curve():
    cfg = LearnConfig(task="copy", impl="reference", lag=10, symbols=2, hidden=8, slots=4,
                      word=4, heads=1, batch=4, eval_every=2, n_val=8, max_steps=4)
    r = train_to_target(cfg)
    assert r.stopped_by in ("step cap", "target") and r.steps <= 4
    assert [c[0] for c in r.curve] == list(range(2, r.steps + 1, 2))
    assert 0.0 <= r.accuracy <= 1.0 and r.chance == 1 / 8 and r.target == 0.9


def test_an_interrupt_ends_the_run_with_the_curve_so_far():
    cfg = LearnConfig(task="copy", impl="reference", lag=10, symbols=2, hidden=8, slots=4,
                      word=4, heads=1, batch=4, eval_every=2, n_val=8, max_steps=100)

    def interrupt(_message):
        raise KeyboardInterrupt

    r = train_to_target(cfg, log=interrupt)
    assert r.stopped_by == "interrupted" and not r.reached
    assert r.steps == 2 and [c[0] for c in r.curve] == [2]


def test_ctrl_c_on_the_command_keeps_what_it_measured(tmp_path):
    """SIGINT to the whole process group (as a terminal's Ctrl-C): the workers end their runs,
    and dnc_learn.json is still written, marked interrupted, exit 0."""
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "dpbench.cli", "bench", "dnc-learn", "--tasks",
                             "copy", "--impls", "reference", "--parallel", "--slots", "8",
                             "--word", "4", "--max-seconds", "600", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:     # until the worker has logged its first evaluation
        line = proc.stderr.readline()
        seen.append(line)
        if " step " in line or not line:
            break
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == 0, err
    report = json.loads((tmp_path / "dnc_learn.json").read_text())
    assert report["interrupted"] is True
    assert report["runs"][0]["stopped_by"] == "interrupted"
    assert "interrupted" in err and "Traceback" not in err


CLI = [sys.executable, "-m", "dpbench.cli", "bench", "dnc-learn"]


def _learn(tmp_path, *args: str, file: str = "dnc_learn.json") -> dict:
    """``dpbench bench dnc-learn --tasks copy ARGS --out tmp_path``, which must succeed; the
    JSON it wrote."""
    out = subprocess.run([*CLI, "--tasks", "copy", *args, "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads((tmp_path / file).read_text())


def _usage_error(*args: str) -> str:
    """The command's stderr for ARGS, which must be a one-line usage error (exit 2)."""
    out = subprocess.run([*CLI, *args], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
    return out.stderr


def test_command_rejects_a_bad_task_in_one_line():
    err = _usage_error("--tasks", "sorting")
    assert "sorting" in err and "copy" in err


def test_command_rejects_an_empty_memory_in_one_line():
    assert "--slots=0" in _usage_error("--slots", "0")


def test_command_writes_json_and_curves(tmp_path):
    data = _learn(tmp_path, "--impls", "reference", "--max-steps", "1", "--slots", "12",
                  "--word", "6")
    assert data["summary"]["copy"]["reference"]["steps"] == 1
    (run,) = data["runs"]
    assert (run["config"]["slots"], run["config"]["word"]) == (12, 6)
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_one_after_the_other_each_impl_runs_at_its_own_thread_count(tmp_path):
    """Without --parallel each run is a fresh worker with its own torch thread count."""
    runs = _learn(tmp_path, "--max-steps", "1", "--slots", "8", "--word", "4",
                  "--threads", "reference=1,fused=2")["runs"]
    assert {r["config"]["impl"]: r["config"]["torch_threads"] for r in runs} == {
        "reference": 1, "fused": 2}


def test_olympic_mean_drops_the_fastest_and_the_slowest_run():
    assert olympic_mean([10.0, 1.0, 4.0, 100.0, 7.0]) == pytest.approx(7.0)   # mean of 4, 7, 10
    assert olympic_mean([3.0, 5.0]) == 4.0 and olympic_mean([]) is None


def _run(task, impl, seed, seconds, steps, reached=True):
    return LearnResult(config={"task": task, "impl": impl, "seed": seed, "advance": 0.9},
                       reached=reached, steps=steps, seconds=seconds)


def test_over_seeds_compares_the_pairs_that_both_reached_the_target():
    runs = [_run("copy", "fused", 0, 100.0, 1000), _run("copy", "reference", 0, 370.0, 1250),
            _run("copy", "fused", 1, 110.0, 1300), _run("copy", "reference", 1, 308.0, 1150),
            _run("copy", "fused", 2, 90.0, 900), _run("copy", "reference", 2, 900.0, 2000,
                                                       reached=False),
            _run("copy", "fused", 3, 120.0, 1200), _run("copy", "reference", 3, 480.0, 1200)]
    s = over_seeds(runs)["copy"]
    assert s["seeds"]["2"]["time_ratio"] is None                  # the reference missed
    assert s["seeds"]["1"]["time_ratio"] == pytest.approx(2.8)
    assert s["seeds"]["3"]["step_time_ratio"] == pytest.approx(4.0)
    assert s["seeds_both_reached"] == 3 and s["seeds_meeting_goal"] == 2
    assert s["median_time_ratio"] == pytest.approx(3.7)
    # olympic means over seeds 0, 1, 3: fused 110 (of 100, 110, 120), reference 370
    assert s["olympic_time_ratio"] == pytest.approx(370.0 / 110.0)
    assert s["mean_time_ratio"] == pytest.approx((370 + 308 + 480) / (100 + 110 + 120))
    low, high = s["mean_time_ratio_ci95"]
    assert low < s["mean_time_ratio"] < high
    # the two factors: per-step speed over every seed (a missed run still has a speed), steps
    # to the target over the seeds 0, 1, 3 where both reached it
    per_step = [(370 / 1250) / (100 / 1000), (308 / 1150) / (110 / 1300), 4.5, 4.0]
    assert s["mean_step_time_ratio"] == pytest.approx(np.mean(per_step), rel=1e-3)
    low, high = s["mean_step_time_ratio_ci95"]
    assert min(per_step) <= low < s["mean_step_time_ratio"] < high <= max(per_step)
    assert s["mean_steps_ratio"] == pytest.approx((1250 + 1150 + 1200) / (1000 + 1300 + 1200))
    low, high = s["mean_steps_ratio_ci95"]
    assert low < 1.0 < high                  # the step counts interleave: no evidence of a bias
    # the pairs' own statistics: seeds 0, 1, 3 both reached; per-seed ratios 3.7, 2.8, 4.0
    assert s["goal_test"]["units"] == 3 and 0.0 < s["goal_test"]["p"] < 1.0
    assert s["pairing"]["steps"]["pairs"] == 3 and -1.0 <= s["pairing"]["steps"]["rho"] <= 1.0
    assert s["mean_time_ratio_ci95_unpaired"] != s["mean_time_ratio_ci95"]
    low99, high99 = s["mean_time_ratio_ci99"]
    assert low99 <= s["mean_time_ratio_ci95"][0] and high99 >= s["mean_time_ratio_ci95"][1]


def test_mean_ratio_interval_covers_the_true_ratio_and_narrows_with_more_runs():
    rng = np.random.default_rng(7)
    def interval(n):
        fused = rng.lognormal(np.log(100), 0.3, size=n)
        ref = 3.0 * rng.lognormal(np.log(100), 0.3, size=n)   # true ratio of the means: 3
        return mean_ratio_ci(list(ref), list(fused), resamples=2000)
    few, many = interval(5), interval(60)
    assert many[0] < 3.0 < many[1]
    assert many[1] - many[0] < few[1] - few[0]
    assert mean_ratio_ci([1.0], [1.0, 2.0]) is None  # one run gives no interval


def _seeds_of_varied_difficulty(n: int, ratio: float, rng, spread: float = 0.6):
    """Per seed (reference, fused) times where the seed sets most of both (a shared lognormal
    difficulty of log-sd ``spread``) and each run adds 10 % of its own: the dnc-learn design."""
    hard = rng.lognormal(0.0, spread, size=n)
    fused = 100 * hard * rng.lognormal(0.0, 0.1, size=n)
    return list(ratio * 100 * hard * rng.lognormal(0.0, 0.1, size=n)), list(fused)


def test_paired_interval_resamples_seeds_and_is_the_narrower_one_when_seeds_set_difficulty():
    ref, fused = _seeds_of_varied_difficulty(20, 3.5, np.random.default_rng(3))
    paired = paired_ratio_ci(ref, fused, resamples=4000)
    unpaired = mean_ratio_ci(ref, fused, resamples=4000)
    assert paired[0] < 3.5 < paired[1] and unpaired[0] < 3.5 < unpaired[1]   # both cover it
    assert paired[0] > 3.0 > unpaired[0]      # only the paired one excludes 3 at this n
    assert (paired[1] - paired[0]) < 0.5 * (unpaired[1] - unpaired[0])
    # without a shared difficulty the pairing carries nothing: the two widths agree
    rng = np.random.default_rng(4)
    ref_i, fused_i = (list(3.5 * rng.lognormal(4.6, 0.3, 20)), list(rng.lognormal(4.6, 0.3, 20)))
    w_p = np.diff(paired_ratio_ci(ref_i, fused_i, resamples=4000))[0]
    w_u = np.diff(mean_ratio_ci(ref_i, fused_i, resamples=4000))[0]
    assert 0.7 < w_p / w_u < 1.4
    with pytest.raises(ValueError, match="3 vs 2"):
        paired_ratio_ci([1.0, 2.0, 3.0], [1.0, 2.0])
    assert paired_ratio_ci([1.0], [1.0]) is None


def test_paired_interval_covers_the_true_ratio_nearly_95_percent_of_the_time():
    """Over 200 simulated 20-seed studies: the paired 95 % interval covers the true ratio in
    181 (90.5 %: the percentile bootstrap is a little short at 20 units, which is why
    ``over_seeds`` also gives the 99 % one), the independent one in all 200 (too wide)."""
    rng = np.random.default_rng(11)
    paired = unpaired = 0
    for _ in range(200):
        ref, fused = _seeds_of_varied_difficulty(20, 3.0, rng)
        seed = int(rng.integers(1 << 30))
        low, high = paired_ratio_ci(ref, fused, resamples=500, seed=seed)
        paired += low < 3.0 < high
        low, high = mean_ratio_ci(ref, fused, resamples=500, seed=seed)
        unpaired += low < 3.0 < high
    assert 170 <= paired <= 198 and unpaired >= 197


def test_rank_correlation_tells_paired_from_independent_seeds():
    ref, fused = _seeds_of_varied_difficulty(20, 3.0, np.random.default_rng(5))
    paired = rank_correlation(ref, fused)
    assert paired["rho"] > 0.7 and paired["p"] < 1e-3 and paired["pairs"] == 20
    # independent sides: a 5 %-level test rejects about 5 % of 400 draws (binomial 99.9 %: 8-35)
    rng = np.random.default_rng(6)
    rejected = sum(rank_correlation(list(rng.normal(size=20)), list(rng.normal(size=20)))["p"]
                   < 0.05 for _ in range(400))
    assert 8 <= rejected <= 35
    assert rank_correlation([1.0, 2.0], [2.0, 1.0]) is None          # too few pairs
    assert rank_correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # one side constant


def test_goal_test_is_one_sided_about_the_goal():
    rng = np.random.default_rng(8)
    above = list(4.0 * rng.lognormal(0.0, 0.15, 20))
    below = list(2.2 * rng.lognormal(0.0, 0.15, 20))
    assert goal_test(above, 3.0)["p"] < 1e-3
    assert goal_test(below, 3.0)["p"] > 0.99     # far below: no evidence of exceeding it
    assert goal_test(above, 3.0)["units"] == 20
    assert goal_test([3.0, 3.0, 3.0], 3.0)["p"] == 1.0   # all at the goal: not above it
    assert goal_test([4.0], 3.0) is None


def test_kaplan_meier_median_counts_missed_runs_as_censored_not_dropped():
    assert km_median([3.0, 1.0, 2.0], [False] * 3) == 2.0          # no censoring: the median
    # 1000 and 1300 reached, one run stopped at 2000 without: S drops to 1/3 at 1300
    assert km_median([1000.0, 1300.0, 2000.0], [False, False, True]) == 1300.0
    # dropping the missed run instead would give the median of 1000 and 1300
    assert km_median([900.0, 2000.0, 2000.0], [False, True, True]) is None   # most missed
    assert km_median([], []) is None


def test_time_to_target_test_separates_seconds_from_steps():
    runs = []
    for seed, (fs, rs, f_steps, r_steps) in enumerate(
            [(97, 354, 1000, 1250), (112, 325, 1300, 1150), (123, 471, 1250, 1600),
             (89, 378, 900, 1150), (181, 589, 1750, 1850)]):
        runs += [_run("copy", "fused", seed, fs, f_steps), _run("copy", "reference", seed, rs, r_steps)]
    early = _run("copy", "fused", 9, 150.0, 1500, reached=False)   # stopped at 150 s
    t = time_to_target_test(runs + [early])
    assert t["seconds"]["logrank_p"] < 0.01            # every fused time below every reference one
    assert t["steps"]["logrank_p"] > 0.2               # the step counts interleave
    assert t["seconds"]["fused"] == {"runs": 6, "missed": 1, "km_median": 112.0}
    assert t["seconds"]["reference"]["km_median"] == 378.0
    # a fused run that never reaches the target (censored beyond every reference time) is
    # evidence against "fused is faster", which dropping it would hide
    never = _run("copy", "fused", 9, 900.0, 9000, reached=False)
    assert time_to_target_test(runs + [never])["seconds"]["logrank_p"] > t["seconds"]["logrank_p"]
    none = time_to_target_test([_run("copy", "fused", 0, 9.0, 9, reached=False)])
    assert none["seconds"]["logrank_p"] is None        # one implementation only


def test_command_runs_several_seeds_and_compares_them(tmp_path):
    data = _learn(tmp_path, "--max-steps", "1", "--slots", "6", "--word", "4", "--seeds", "3,5")
    assert sorted(data["summary"]) == ["3", "5"]
    assert sorted((r["config"]["seed"], r["config"]["impl"]) for r in data["runs"]) == [
        (3, "fused"), (3, "reference"), (5, "fused"), (5, "reference")]
    assert sorted(data["over_seeds"]["copy"]["seeds"]) == ["3", "5"]
    assert data["seeds_done"] == [3, 5] and data["partial"] is False


def test_report_between_seeds_holds_the_seeds_done(tmp_path):
    """What the command writes after each seed, so that a killed session keeps the seeds that
    finished: only those seeds' summaries, marked partial."""
    from dpbench.commands.bench_learn import _report, _write

    runs = [asdict(_run("copy", impl, 4, t, 100)) for impl, t in (("fused", 10.0),
                                                                  ("reference", 30.0))]
    for r in runs:
        r["curve"] = [[100, r["seconds"], 10, 0.9, 0.9, 0.1]]   # step, s, lesson, accs, loss
    _write(_report(runs, [4, 7, 9], parallel=True), tmp_path, partial=True)
    data = json.loads((tmp_path / "dnc_learn.json").read_text())
    assert data["partial"] is True and data["seeds_done"] == [4]
    assert list(data["summary"]) == ["4"] and list(data["over_seeds"]["copy"]["seeds"]) == ["4"]


def _recorded(tmp_path, name: str, seeds: dict, parallel: bool = True):
    """A dnc_learn.json report at ``tmp_path/name`` of copy runs, ``seeds``: seed → (fused s,
    reference s), both reaching the target at 100 steps per 10 s of fused time."""
    from dpbench.commands.bench_learn import _report

    runs = []
    for seed, times in seeds.items():
        for impl, t in zip(("fused", "reference"), times):
            r = asdict(_run("copy", impl, seed, t, int(10 * times[0])))
            r["curve"] = [[r["steps"], t, 10, 0.9, 0.9, 0.1]]
            runs.append(r)
    path = tmp_path / name
    path.write_text(json.dumps(_report(runs, sorted(seeds), parallel=parallel)))
    return path, runs


def _main(capsys, *args: str) -> tuple[int, str]:
    """``dpbench bench dnc-learn ARGS`` in this process (no interpreter start-up): exit code
    and stderr."""
    from dpbench.cli import main

    code = main(["bench", "dnc-learn", *args])
    return code, capsys.readouterr().err


def test_from_pools_recorded_reports_and_analyses_them_as_one(tmp_path, capsys):
    """``--from a,b`` trains nothing: the comparison over the pooled seeds is the one the
    analysis gives for all runs at once, and the report names its sources."""
    from dpbench.commands.bench_learn import _report

    a, runs_a = _recorded(tmp_path, "a.json", {0: (100.0, 370.0), 1: (110.0, 308.0)})
    b, runs_b = _recorded(tmp_path, "b.json", {2: (90.0, 400.0), 3: (120.0, 480.0)},
                          parallel=False)
    code, err = _main(capsys, "--from", f"{a},{b}", "--out", str(tmp_path / "pooled"))
    assert code == 0, err
    data = json.loads((tmp_path / "pooled" / "dnc_learn.json").read_text())
    assert data["sources"] == [str(a), str(b)] and data["seeds_done"] == [0, 1, 2, 3]
    assert data["parallel"] is False                  # not every source ran side by side
    expected = _report(runs_a + runs_b, [0, 1, 2, 3], parallel=False)["over_seeds"]["copy"]
    got = data["over_seeds"]["copy"]
    assert got["mean_time_ratio"] == pytest.approx(expected["mean_time_ratio"])
    assert got["mean_time_ratio_ci95"] == pytest.approx(expected["mean_time_ratio_ci95"])
    assert got["mean_time_ratio"] == pytest.approx((370 + 308 + 400 + 480) / 420)
    assert (tmp_path / "pooled" / "curves.png").stat().st_size > 0


def test_from_refuses_a_run_recorded_twice_and_files_that_are_no_reports(tmp_path, capsys):
    a, _ = _recorded(tmp_path, "a.json", {0: (100.0, 370.0), 1: (110.0, 308.0)})
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bad.json").write_text("{")
    cases = [((f"{a},{a}",), ("seed 0", "a.json")),
             ((str(tmp_path / "nowhere.json"),), ("nowhere.json",)),
             ((str(tmp_path / "list.json"),), ("no 'runs' list",)),
             ((str(tmp_path / "bad.json"),), ("not JSON",)),
             ((str(a), "--step-time", "2"), ("--step-time",))]
    for (value, *rest), named in cases:
        code, err = _main(capsys, "--from", value, *rest)
        assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err, err
        assert all(n in err for n in named), err


def test_command_rejects_bad_seeds_in_one_line():
    assert "--seeds='0,x'" in _usage_error("--seeds", "0,x")


def test_step_times_measure_the_three_variants_on_the_same_batches():
    """Each variant: rounds × steps timed steps, positive; the ratios are the medians'."""
    from dpbench.ops import _loader
    from dpbench.ops.dnc_learn import STEP_VARIANTS, step_times

    if not _loader.fused_status("cpu").available:
        pytest.skip("fused extension unavailable here")
    res = step_times(LearnConfig(task="copy", slots=8, word=4, batch=4), rounds=2, steps=3)
    assert set(res["median_ms"]) == set(STEP_VARIANTS) == set(res["ms"])
    assert all(len(t) == 6 and min(t) > 0 for t in res["ms"].values())
    med = res["median_ms"]
    assert res["reference_over"]["reference"] == 1.0
    assert res["step_over_sequence"] == pytest.approx(med["fused-step"] / med["fused"])
    assert med["fused"] == pytest.approx(float(np.median(res["ms"]["fused"])))


def test_step_time_command_writes_its_json_and_rejects_bad_rounds(tmp_path):
    assert "--step-time=-1" in _usage_error("--step-time", "-1")
    data = _learn(tmp_path, "--step-time", "1", "--slots", "8", "--word", "4",
                  file="step_time.json")
    assert len(data["copy"]["ms"]["fused"]) == 10 and data["copy"]["config"]["slots"] == 8


def test_step_times_set_each_impls_threads(monkeypatch):
    """Per-impl thread counts: every timed step of an impl runs at its own count."""
    from dpbench.ops import _loader, dnc_learn

    if not _loader.fused_status("cpu").available:
        pytest.skip("fused extension unavailable here")
    seen: dict = {}
    real = dnc_learn.train_step

    def spy(model, *a):
        seen.setdefault(model.impl, set()).add(torch.get_num_threads())
        return real(model, *a)

    monkeypatch.setattr(dnc_learn, "train_step", spy)
    before = torch.get_num_threads()
    try:
        res = dnc_learn.step_times(LearnConfig(task="copy", slots=8, word=4, batch=4), rounds=1,
                                   steps=2, threads={"reference": 1, "fused": 2})
    finally:
        torch.set_num_threads(before)
    assert seen == {"reference": {1}, "fused": {2}}
    assert res["config"]["threads"] == {"reference": 1, "fused": 2}


@pytest.mark.parametrize("spec, parallel, expected", [
    ("", False, {"reference": 0, "fused": 0}),
    ("3", False, {"reference": 3, "fused": 3}),
    ("reference=1,fused=2", False, {"reference": 1, "fused": 2}),
    ("fused=2", False, {"reference": 0, "fused": 2}),
    ("", True, {"reference": 1, "fused": 1}),
])
def test_threads_spec(spec, parallel, expected):
    from dpbench.commands.bench_learn import _threads

    assert _threads(spec, parallel) == expected


@pytest.mark.parametrize("args, named", [
    (["--threads", "lstm=2"], "'lstm'"),
    (["--threads", "fused=two"], "--threads='fused=two'"),
    (["--threads", "-1"], "--threads='-1'"),
    (["--threads", "fused=2", "--parallel"], "--threads='fused=2'"),
])
def test_bad_threads_are_one_line_errors(args, named):
    assert named in _usage_error(*args)

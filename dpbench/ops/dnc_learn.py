"""Time to accuracy of the DNC (MLPerf's measure: wall time to a target quality) on its own
tasks, with ``impl="reference"`` and ``impl="fused"`` trained the same way.

Tasks (targets on the *validation* split of the final lesson):

* ``copy`` — :func:`dpbench.datasets.recall.copy_split` (Arjovsky et al. 2016, §4.1) with
  ``lag`` (≥ 10) blanks and ``symbols`` = 10 of 8; chance 1/8; target 0.9;
* ``associative-recall`` — :func:`dpbench.datasets.associative.recall_split` (Graves, Wayne &
  Danihelka 2014, NTM §4.3): 2–6 items of 3 × 6-bit vectors; chance 2⁻⁶ ≈ 0.016 per answer
  vector; target 0.5 (32× chance: half the answer vectors exactly right, all 6 bits).

Training, taken from the papers:

* curriculum (Graves et al. 2016, Methods, "Curriculum learning": lessons of growing
  difficulty, the next lesson once the current one is learned): copy grows the number of
  symbols 2 → 4 → 6 → 8 → 10 at the full lag, associative recall the largest item count
  2 → 3 → … → 6; each sequence of a lesson draws its length uniformly up to the lesson's (as
  the NTM copy task draws random lengths 1–20, Graves et al. 2014 §4.1), so earlier lessons
  stay in the mix. A lesson is passed at ``advance`` (0.9) validation accuracy on it; shorter
  sequences are left-padded with blanks to the final lesson's window, so every batch has the
  same shape;
* gradient clipping by global norm (deepmind/dnc's ``train.py`` clips at 50; this small
  controller takes 10) and Adam (Kingma & Ba 2015) instead of the paper's RMSProp, at
  ``lr`` = 3e-3 (a small model; the paper's 1e-4 is for 256-unit controllers);
* the memory: 1 write head and 2 read heads as in the paper's copy experiments; 128 slots of
  20, the NTM copy task's memory (Graves, Wayne & Danihelka 2014, §4.1): with this many slots
  the access op's O(N²) link updates are most of a step, which is what the benchmark is for
  (with 16 slots the controller and interface layer, common to both implementations, were).

Loss: cross-entropy on the scored steps only (copy: the recalled symbols; associative recall:
the answer vectors). Accuracy: exact class matches on the scored steps.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional

import numpy as np
import torch

from dpbench.data import Split
from dpbench.datasets.associative import recall_split, window_length
from dpbench.datasets.recall import copy_split
from dpbench.models.dnc import DNC
from dpbench.ops.dnc_learn_stats import (censored_data, goal_test, km_median, mean_ci,
                                         mean_ratio_ci, olympic_mean, paired_ratio_ci,
                                         rank_correlation)

TASKS = ("copy", "associative-recall")
TARGETS = {"copy": 0.9, "associative-recall": 0.5}
CHANCE = {"copy": 1 / 8, "associative-recall": 2.0 ** -6}


@dataclass
class LearnConfig:
    task: str = "copy"
    impl: str = "fused"
    lag: int = 10                 # copy only
    symbols: int = 10             # copy only
    alphabet: int = 8             # copy only
    items: int = 6                # associative recall: largest item count
    hidden: int = 64
    slots: int = 128              # the NTM copy task's memory, Graves et al. 2014 §4.1
    word: int = 20
    heads: int = 2
    batch: int = 32
    lr: float = 3e-3
    clip: float = 10.0
    advance: float = 0.9          # curriculum: next lesson at this validation accuracy
    eval_every: int = 50
    n_val: int = 256
    max_steps: int = 20000
    max_seconds: float = 900.0
    target: Optional[float] = None   # default TARGETS[task]
    seed: int = 0
    threads: int = 0
    fused_sequence: bool = True   # fused: the whole-sequence op (False: the per-step op)


@dataclass
class LearnResult:
    config: dict
    reached: bool = False
    steps: int = 0
    seconds: float = 0.0
    accuracy: float = 0.0          # last validation accuracy on the final lesson
    best_accuracy: float = 0.0
    chance: float = 0.0
    target: float = 0.0
    curve: list = field(default_factory=list)   # [step, seconds, lesson, lesson acc, final acc, loss]
    stopped_by: str = ""


def _pad_left(split: Split, steps: int, scored: int) -> Split:
    """Left-pad ``x [n, t, D]`` with blank tokens (class 0 one-hot) and ``y``/``mask`` with
    blanks to ``steps``; returns x ``[n, steps, D]``, y/mask ``[n, steps]``."""
    n, t, d = split.x.shape
    if t == steps:
        return split
    x = torch.zeros(n, steps, d)
    x[:, :steps - t, 0] = 1.0
    x[:, steps - t:] = split.x
    y = torch.zeros(n, steps, dtype=split.y.dtype)
    y[:, steps - t:] = split.y
    mask = torch.zeros(n, steps, dtype=torch.bool)
    mask[:, steps - t:] = split.mask
    return Split(x=x, y=y, mask=mask)


class Task:
    """Batches of one task at a curriculum lesson; ``lessons[-1]`` is the target task."""

    def __init__(self, cfg: LearnConfig):
        self.cfg = cfg
        if cfg.task == "copy":
            self.lessons = sorted({min(s, cfg.symbols) for s in range(2, cfg.symbols + 1, 2)}
                                  | {cfg.symbols})
            self.steps = cfg.lag + 2 * cfg.symbols
            self.input_size, self.output_size = cfg.alphabet + 2, cfg.alphabet + 1
            self.output_steps = self.steps
        else:
            self.lessons = list(range(2, cfg.items + 1))
            self.steps = window_length(cfg.items, 3)
            self.input_size, self.output_size, self.output_steps = 6 + 2, 2 ** 6, 3

    def batch(self, n: int, lesson: int, rng: np.random.Generator,
              exact: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x ``[n, T, D]``, y ``[n, T_out]``, mask ``[n, T_out]`` (scored steps). Lengths are
        drawn uniformly up to the lesson's, or exactly the lesson's with ``exact``."""
        cfg, top = self.cfg, self.lessons[lesson]
        if cfg.task == "copy":
            lengths = np.full(n, top) if exact else rng.integers(1, top + 1, size=n)
            parts = [_pad_left(copy_split(int((lengths == s).sum()), cfg.lag, int(s),
                                          cfg.alphabet, rng), self.steps, int(s))
                     for s in np.unique(lengths)]
            x = torch.cat([p.x for p in parts])
            y = torch.cat([p.y for p in parts])
            mask = torch.cat([p.mask for p in parts])
            return x, y, mask
        counts = np.full(n, top) if exact else rng.integers(2, top + 1, size=n)
        s = recall_split(n, counts, self.steps, 6, 3, rng)
        return s.x, s.y, torch.ones_like(s.y, dtype=torch.bool)


def build_model(cfg: LearnConfig, task: Task, impl: str) -> DNC:
    """The DNC of ``cfg`` for ``task`` with access op ``impl`` (parameters from torch's RNG);
    ``cfg.fused_sequence`` picks the fused whole-sequence op or the per-step one
    (:class:`~dpbench.models._dnc.DNC`)."""
    return DNC(input_size=task.input_size, input_steps=task.steps, output_size=task.output_size,
               output_steps=task.output_steps, task="recall", hidden_size=cfg.hidden,
               memory_slots=cfg.slots, word_size=cfg.word, read_heads=cfg.heads, impl=impl,
               fused_sequence=cfg.fused_sequence)


LEARN_IMPLS = ("reference", "fused")
"""The access implementations dnc-learn compares (``LearnConfig.impl``)."""

STEP_VARIANTS = {"reference": ("reference", False), "fused-step": ("fused", False),
                 "fused": ("fused", True)}
"""The training-step variants :func:`step_times` compares: name → (impl, fused_sequence)."""


def step_times(cfg: LearnConfig, rounds: int = 5, steps: int = 10,
               threads: Optional[dict[str, int]] = None) -> dict:
    """Wall time of one training step (forward, backward, clipping, Adam) of the task's DNC on
    batches of its final lesson, for each of :data:`STEP_VARIANTS`: the reference, the fused
    access op with the controller and interface layer in Python, and the fused whole-sequence
    op. One process; ``rounds`` rounds, each timing ``steps`` steps of every variant in turn
    (so load drifts hit all alike) after one untimed warm-up step each; per variant the
    median over all timed steps in ms, and the reference's median over each variant's.
    ``threads`` (impl → torch threads, 0 = leave as is; default ``cfg.threads`` for all) is set
    before each variant's steps, so impls can be timed each at its own thread count."""
    threads = threads or dict.fromkeys(LEARN_IMPLS, cfg.threads)
    task = Task(cfg)
    rng = np.random.default_rng(cfg.seed)
    batches = [task.batch(cfg.batch, len(task.lessons) - 1, rng) for _ in range(steps)]
    runs = {}
    for name, (impl, seq) in STEP_VARIANTS.items():
        torch.manual_seed(cfg.seed)
        model = build_model(replace(cfg, fused_sequence=seq), task, impl)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        _set_threads(threads.get(impl, 0))
        train_step(model, opt, cfg.clip, *batches[0])   # warm-up: build, first allocations
        runs[name] = (model, opt, [])
    for _ in range(rounds):
        for name, (model, opt, times) in runs.items():
            _set_threads(threads.get(STEP_VARIANTS[name][0], 0))
            for b in batches:
                t0 = time.perf_counter()
                train_step(model, opt, cfg.clip, *b)
                times.append(1e3 * (time.perf_counter() - t0))
    med = {name: float(np.median(times)) for name, (_, _, times) in runs.items()}
    return {"config": {**asdict(cfg), "rounds": rounds, "steps": steps, "threads": threads},
            "median_ms": med, "ms": {name: times for name, (_, _, times) in runs.items()},
            "reference_over": {name: med["reference"] / m for name, m in med.items()},
            "step_over_sequence": med["fused-step"] / med["fused"]}


def _set_threads(n: int) -> None:
    if n:
        torch.set_num_threads(n)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, clip: float, x, y,
               mask) -> float:
    """One optimiser step on the batch ``x [n, T, D]``, ``y``/``mask [n, T_out]``: cross-entropy
    on the scored steps, gradients clipped to global norm ``clip``; returns the loss."""
    loss = torch.nn.functional.cross_entropy(model(x)[mask], y[mask])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss.item()


def accuracy(model: torch.nn.Module, x, y, mask) -> float:
    with torch.no_grad():
        hit = (model(x).argmax(-1) == y) & mask
    return hit.sum().item() / mask.sum().item()


def train_to_target(cfg: LearnConfig, log: Optional[Callable[[str], None]] = None) -> LearnResult:
    """Train until the final lesson's validation accuracy reaches the target, or a cap; an
    interrupt (Ctrl-C) ends it early with the curve so far (``stopped_by="interrupted"``)."""
    if cfg.task not in TASKS:
        raise ValueError(f"task {cfg.task!r} not in {TASKS}")
    _set_threads(cfg.threads)
    target = cfg.target if cfg.target is not None else TARGETS[cfg.task]
    task = Task(cfg)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    val_rng = np.random.default_rng(cfg.seed + 10_000)
    val = [task.batch(cfg.n_val, k, val_rng, exact=True) for k in range(len(task.lessons))]
    model = build_model(cfg, task, cfg.impl)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    result = LearnResult(config={**asdict(cfg), "torch_threads": torch.get_num_threads()},
                         chance=CHANCE[cfg.task], target=target)
    with torch.no_grad():   # loads (or JIT-builds) the fused kernels before the clock starts
        model(val[0][0][:2])
    lesson, start, loss_sum, loss_n = 0, time.perf_counter(), 0.0, 0
    try:  # Ctrl-C (SIGINT) ends the run with what it has measured: stopped_by "interrupted"
        for step in range(1, cfg.max_steps + 1):
            loss = train_step(model, opt, cfg.clip, *task.batch(cfg.batch, lesson, rng))
            loss_sum, loss_n = loss_sum + loss, loss_n + 1
            elapsed = time.perf_counter() - start
            if step % cfg.eval_every and elapsed < cfg.max_seconds and step < cfg.max_steps:
                continue
            lesson_acc = accuracy(model, *val[lesson])
            final_acc = (lesson_acc if lesson == len(task.lessons) - 1
                         else accuracy(model, *val[-1]))
            elapsed = time.perf_counter() - start   # the evaluation counts: part of the run
            result.curve.append([step, round(elapsed, 2), task.lessons[lesson],
                                 round(lesson_acc, 4), round(final_acc, 4),
                                 round(loss_sum / loss_n, 4)])
            loss_sum, loss_n = 0.0, 0
            result.steps, result.seconds, result.accuracy = step, elapsed, final_acc
            result.best_accuracy = max(result.best_accuracy, final_acc)
            if log:
                log(f"{cfg.task} {cfg.impl} step {step} {elapsed:.0f}s lesson "
                    f"{task.lessons[lesson]} acc {lesson_acc:.3f} final {final_acc:.3f} "
                    f"loss {result.curve[-1][-1]:.3f}")
            if final_acc >= target:
                result.reached, result.stopped_by = True, "target"
                break
            if elapsed >= cfg.max_seconds:
                result.stopped_by = "time cap"
                break
            while lesson < len(task.lessons) - 1 and lesson_acc >= cfg.advance:
                lesson += 1
                lesson_acc = accuracy(model, *val[lesson])
    except KeyboardInterrupt:
        result.stopped_by = "interrupted"
    if not result.stopped_by:   # the loop ran to max_steps without a target or time stop
        result.stopped_by = "step cap"
    return result


def accuracy_at(result: LearnResult, seconds: float) -> float:
    """The final-lesson validation accuracy of the last evaluation at or before ``seconds``."""
    acc = 0.0
    for _, t, _, _, final, _ in result.curve:
        if t <= seconds:
            acc = final
    return acc


def seconds_to(result: LearnResult, level: float) -> float:
    """Wall time of the first evaluation at ``level`` or more (inf when never)."""
    return next((t for _, t, _, _, final, _ in result.curve if final >= level), math.inf)


def lesson_times(result: LearnResult) -> dict:
    """Seconds at which each curriculum lesson was first passed (its accuracy ≥ advance)."""
    advance = result.config["advance"]
    out: dict = {}
    for _, t, lesson, acc, _, _ in result.curve:
        if acc >= advance and str(lesson) not in out:
            out[str(lesson)] = t
    return out


def summary(results: list[LearnResult]) -> dict:
    """Per task: each impl's steps / seconds / accuracy, and fused vs reference in time to the
    target (or, when the reference never got there, its accuracy at the fused run's time) and
    in time to pass each curriculum lesson that both passed."""
    out: dict = {}
    for r in results:
        task, impl = r.config["task"], r.config["impl"]
        out.setdefault(task, {})[impl] = {
            "reached": r.reached, "steps": r.steps, "seconds": round(r.seconds, 1),
            "accuracy": r.accuracy, "best_accuracy": r.best_accuracy, "target": r.target,
            "chance": r.chance, "stopped_by": r.stopped_by,
            "seconds_per_step": round(r.seconds / max(r.steps, 1), 4),
            "lesson_passed_at_s": lesson_times(r)}
    for task, rows in out.items():
        by = {r.config["impl"]: r for r in results if r.config["task"] == task}
        if {"fused", "reference"} <= by.keys():
            fused, ref = by["fused"], by["reference"]
            rows["reference_accuracy_at_fused_end"] = accuracy_at(ref, fused.seconds)
            rows["reference_over_fused_time_to_target"] = (
                ref.seconds / fused.seconds if fused.reached and ref.reached else None)
            rows["step_time_ratio"] = (rows["reference"]["seconds_per_step"]
                                       / rows["fused"]["seconds_per_step"]
                                       if rows["fused"]["seconds_per_step"] else None)
            # the curriculum's intermediate targets: a ratio even where the final one is missed
            ref_l, fused_l = lesson_times(ref), lesson_times(fused)
            rows["reference_over_fused_lesson_time"] = {
                k: ref_l[k] / fused_l[k] for k in fused_l if k in ref_l and fused_l[k] > 0}
    return out


def time_to_target_test(runs: list[LearnResult]) -> dict:
    """Reference vs fused time to target over all of a task's runs, runs that missed the
    target right-censored at their stop: per measure (``seconds``, ``steps``) each
    implementation's Kaplan–Meier median (:func:`km_median`), its count of runs and of missed
    ones, and the two-sided log-rank test's p-value (Mantel 1966; ``scipy.stats.logrank``)
    of equal distributions. Seconds are where the fused op should differ; steps, by twin
    training (``dpbench bench dnc-twin``), should not."""
    from scipy.stats import logrank

    by = {impl: [r for r in runs if r.config["impl"] == impl] for impl in LEARN_IMPLS}
    out: dict = {}
    for measure in ("seconds", "steps"):
        row: dict = {}
        samples = {}
        for impl, rs in by.items():
            values = [float(getattr(r, measure)) for r in rs]
            censored = [not r.reached for r in rs]
            samples[impl] = censored_data(values, censored)
            row[impl] = {"runs": len(rs), "missed": sum(censored),
                         "km_median": km_median(values, censored)}
        reached = sum(r.reached for rs in by.values() for r in rs)
        # scipy's variance term divides 0 by 0 once one run is left at risk and counts it as 0
        # (its own nan handling), with a RuntimeWarning that says nothing here
        with np.errstate(invalid="ignore", divide="ignore"):
            row["logrank_p"] = (float(logrank(samples["reference"], samples["fused"]).pvalue)
                                if all(by.values()) and reached else None)
        out[measure] = row
    return out


def over_seeds(results: list[LearnResult], goal: float = 3.0) -> dict:
    """Per task, the fused-vs-reference comparison over the seeds that ran both: each seed's
    time-to-target ratio (None where either missed the target) and per-step ratio, their
    medians, how many seeds reach ``goal``, the ratio of the two implementations' olympic
    mean times to target (:func:`olympic_mean`), and the ratio of their mean times, both over
    the seeds where both reached it. A seed is one experimental unit (both implementations
    start from its initial weights and see its batches), so the ratio's 95 % interval
    resamples seeds (:func:`paired_ratio_ci`; also at 99 %, since a percentile bootstrap of
    10–20 units covers a little less than its level); the interval that resamples the two sides
    independently (:func:`mean_ratio_ci`) is kept beside it as ``…_unpaired``, and
    ``pairing`` gives the rank correlation of the two sides' steps and times across seeds
    (:func:`rank_correlation`) that decides how far the two differ. ``goal_test``: one-sided
    Wilcoxon signed-rank test of the per-seed ratios against ``goal`` (:func:`goal_test`).
    The ratio's two factors, each with its interval: the mean per-step speed ratio over all
    seeds (:func:`mean_ci`; the kernels' work) and the ratio of the mean steps to the target
    over the seeds where both reached it (the learning's; 1 if the fused op is the same
    learner); and, over all runs with the missed ones censored, Kaplan–Meier medians and a
    log-rank test of the times and of the step counts (:func:`time_to_target_test`; it treats
    the runs as independent, so it ignores the pairing and errs on the wide side)."""
    out: dict = {}
    for task in sorted({r.config["task"] for r in results}):
        by_seed: dict = {}
        for r in results:
            if r.config["task"] == task:
                by_seed.setdefault(r.config["seed"], {})[r.config["impl"]] = r
        rows, reached = {}, []   # reached: the (reference, fused) pairs that both hit it
        for seed in sorted(by_seed):
            pair = by_seed[seed]
            if not {"fused", "reference"} <= pair.keys():
                continue
            fused, ref = pair["fused"], pair["reference"]
            table = summary([ref, fused])[task]   # the single-seed comparison, reused
            rows[str(seed)] = {"fused_seconds": round(fused.seconds, 1),
                               "reference_seconds": round(ref.seconds, 1),
                               "fused_steps": fused.steps, "reference_steps": ref.steps,
                               "time_ratio": table["reference_over_fused_time_to_target"],
                               "step_time_ratio": table["step_time_ratio"]}
            if fused.reached and ref.reached:
                reached.append((ref, fused))
        ref_t = [ref.seconds for ref, _ in reached]
        fused_t = [fused.seconds for _, fused in reached]
        ref_n = [float(ref.steps) for ref, _ in reached]
        fused_n = [float(fused.steps) for _, fused in reached]
        ratios = [row["time_ratio"] for row in rows.values() if row["time_ratio"] is not None]
        steps = [row["step_time_ratio"] for row in rows.values() if row["step_time_ratio"]]
        ref_o, fused_o = olympic_mean(ref_t), olympic_mean(fused_t)
        out[task] = {"seeds": rows, "goal": goal,
                     "seeds_meeting_goal": sum(x >= goal for x in ratios),
                     "seeds_both_reached": len(ratios),
                     "median_time_ratio": float(np.median(ratios)) if ratios else None,
                     "median_step_time_ratio": float(np.median(steps)) if steps else None,
                     "olympic_fused_seconds": fused_o, "olympic_reference_seconds": ref_o,
                     "olympic_time_ratio": ref_o / fused_o if ref_o and fused_o else None,
                     "mean_time_ratio": (float(np.mean(ref_t) / np.mean(fused_t))
                                         if ref_t else None),
                     "mean_time_ratio_ci95": paired_ratio_ci(ref_t, fused_t),
                     "mean_time_ratio_ci99": paired_ratio_ci(ref_t, fused_t, level=0.99),
                     "mean_time_ratio_ci95_unpaired": mean_ratio_ci(ref_t, fused_t),
                     "goal_test": goal_test(ratios, goal),
                     "pairing": {"steps": rank_correlation(ref_n, fused_n),
                                 "seconds": rank_correlation(ref_t, fused_t)},
                     # the time ratio's two factors: speed per step, and steps to the target
                     "mean_step_time_ratio": float(np.mean(steps)) if steps else None,
                     "mean_step_time_ratio_ci95": mean_ci(steps),
                     "mean_steps_ratio": (float(np.mean(ref_n) / np.mean(fused_n))
                                          if ref_n else None),
                     "mean_steps_ratio_ci95": paired_ratio_ci(ref_n, fused_n),
                     "mean_steps_ratio_ci95_unpaired": mean_ratio_ci(ref_n, fused_n),
                     "time_to_target": time_to_target_test(
                         [r for r in results if r.config["task"] == task])}
    return out

